"""Read WFDB records into physical units.

The common storage formats (16, 61, 80, 160, 212, 24, 32, with byte offsets, as in PTB-XL ``.dat`` and
PhysioNet/CinC ``.mat`` files) are decoded with NumPy straight from the file bytes. Everything else
(skew, multi-frequency frames, multi-segment records, compressed/difference formats) goes through
``wfdb.rdrecord``. Either way the physical values equal ``wfdb.rdsamp``'s.

Problems with the record itself raise :class:`RecordError` with a message a data steward can act on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from components.io.wfdb_header import Header, HeaderError, InvalidHeader, Layout, read_bytes, read_header

#: bytes per sample (212 packs two 12-bit samples into three bytes)
_BYTES_PER_SAMPLE: dict[str, float] = {"16": 2, "61": 2, "160": 2, "80": 1, "24": 3, "32": 4, "212": 1.5}
#: the digital value WFDB uses for "no sample" in each format (each format's smallest value)
_INVALID_SAMPLE: dict[str, int] = {
    "16": -(2**15),
    "61": -(2**15),
    "160": -(2**15),
    "80": -(2**7),
    "24": -(2**23),
    "32": -(2**31),
    "212": -(2**11),
}
#: the largest magnitude a digital sample of each format can have
_MAGNITUDE: dict[str, int] = {
    "16": 2**15,
    "61": 2**15,
    "160": 2**15,
    "80": 2**7,
    "24": 2**23,
    "32": 2**31,
    "212": 2**11,
}
FAST_FORMATS = frozenset(_BYTES_PER_SAMPLE)
#: every storage format WFDB defines (the rest of them are read through ``wfdb``)
WFDB_FORMATS = FAST_FORMATS | {"8", "310", "311", "508", "516", "524"}


class RecordError(ValueError):
    """A record that cannot be read as it claims to be; the message says why."""


@dataclass(frozen=True, slots=True)
class RawRecord:
    """A record in physical units at its own rate: ``signal`` is ``(n_samples, n_sig)`` float64."""

    signal: np.ndarray
    fs: float
    sig_names: tuple[str, ...]
    units: tuple[str, ...]
    comments: tuple[str, ...]
    storage_format: str
    reader: str  # "numpy" or "wfdb"


@dataclass(frozen=True, slots=True)
class DigitalRecord:
    """A single-file record NumPy decoded: digital samples ``(n_samples, n_sig)`` and their calibration.

    :meth:`physical` gives the float64 physical values (what ``wfdb.rdsamp`` returns); ingest can also
    convert the digital samples itself (see :mod:`components.io.prepare`).
    """

    digital: np.ndarray  # integer, in header signal order
    baseline: np.ndarray  # (n_sig,) float64
    gain: np.ndarray  # (n_sig,) float64
    invalid_value: int  # WFDB's "no sample" value of the file's format
    float32_exact: bool  # see :func:`float32_exact`
    fs: float
    sig_names: tuple[str, ...]
    units: tuple[str, ...]
    comments: tuple[str, ...]
    storage_format: str

    def has_invalid_samples(self) -> bool:
        """Whether any sample holds the "no sample" value (cheaply: it is the format's smallest value)."""
        return self.digital.size > 0 and int(self.digital.min()) <= self.invalid_value

    def physical(self) -> RawRecord:
        """``(digital - baseline) / gain`` in float64, invalid samples as NaN (as wfdb does)."""
        physical = self.digital.astype(np.float64)
        np.subtract(physical, self.baseline, out=physical)
        np.divide(physical, self.gain, out=physical)
        invalid = self.digital == self.invalid_value
        if invalid.any():
            physical[invalid] = np.nan
        return RawRecord(
            physical, self.fs, self.sig_names, self.units, self.comments, self.storage_format, "numpy"
        )


def read_record(base: Path | str) -> RawRecord:
    """Read the record whose header is ``base.hea``; raises :class:`RecordError` for broken records."""
    record = read_samples(base)
    return record.physical() if isinstance(record, DigitalRecord) else record


def read_samples(base: Path | str) -> DigitalRecord | RawRecord:
    """Like :func:`read_record`, but a single-file record NumPy decodes comes back still digital."""
    hea = f"{base}.hea"
    try:
        header = read_header(hea)
    except FileNotFoundError as exc:
        raise RecordError(f"header file missing: {os.path.basename(hea)}") from exc
    except InvalidHeader as exc:
        raise RecordError(f"invalid header {os.path.basename(hea)}: {exc}") from exc
    except HeaderError as exc:
        try:
            return _read_with_wfdb(base)
        except RecordError as fallback:
            raise RecordError(f"unparsable header {os.path.basename(hea)}: {exc} (wfdb: {fallback})") from exc
    plan = _plan(header.layout)
    if plan.unknown_formats:
        raise RecordError(
            f"unknown storage format {', '.join(plan.unknown_formats)} (WFDB defines {_format_list()})"
        )
    if plan.files is None or any(name.startswith("~") for name in header.file_names):
        return _read_with_wfdb(base)
    if len(plan.files) == 1:
        file = plan.files[0]
        return DigitalRecord(
            digital=_read_file(os.path.dirname(base), header.file_names[0], file, header.sig_len),
            baseline=file.baseline,
            gain=file.gain,
            invalid_value=_INVALID_SAMPLE[file.fmt],
            float32_exact=file.float32_exact,
            fs=header.fs,
            sig_names=header.layout.sig_names,
            units=header.layout.units,
            comments=header.comments,
            storage_format=header.layout.storage_format,
        )
    return _read_with_numpy(os.path.dirname(base), header, plan.files)


def _format_list() -> str:
    return ", ".join(sorted(WFDB_FORMATS, key=int))


@dataclass(frozen=True, slots=True)
class _FileDecoding:
    """How NumPy decodes one signal file: its format, where samples start, and its signals' calibration."""

    fmt: str
    byte_offset: int
    n_sig: int
    baseline: np.ndarray  # (n_sig,) float64
    gain: np.ndarray  # (n_sig,) float64
    float32_exact: bool


@dataclass(frozen=True, slots=True)
class _Plan:
    unknown_formats: tuple[str, ...]
    files: tuple[_FileDecoding, ...] | None  # per file of the header; None: wfdb reads the record


@lru_cache(maxsize=1024)
def _plan(layout: Layout) -> _Plan:
    """How to read records of a header layout (cached: records of one site share it).

    NumPy decodes a file when its signals share one fast format and byte offset, without frames or skew.
    """
    signals = layout.signals
    unknown = tuple(sorted({s.fmt for s in signals} - WFDB_FORMATS))
    if unknown or not signals or not all(s.samps_per_frame == 1 and s.skew == 0 for s in signals):
        return _Plan(unknown, None)
    files: list[_FileDecoding] = []
    for file in range(max(layout.file_index) + 1):
        group = layout.file_signals(file)
        first = group[0]
        if first.fmt not in FAST_FORMATS:
            return _Plan(unknown, None)
        if any(s.fmt != first.fmt or s.byte_offset != first.byte_offset for s in group):
            return _Plan(unknown, None)
        baseline = np.array([s.baseline for s in group], dtype=np.float64)
        gain = np.array([s.adc_gain for s in group], dtype=np.float64)
        exact = float32_exact(first.fmt, baseline, gain)
        files.append(_FileDecoding(first.fmt, first.byte_offset, len(group), baseline, gain, exact))
    return _Plan(unknown, tuple(files))


def float32_exact(fmt: str, baseline: np.ndarray, gain: np.ndarray) -> bool:
    """Whether ``(digital - baseline) / gain`` computed in float32 equals the float64 result rounded to
    float32, for every sample value the format can hold.

    It does when ``digital - baseline`` is an integer float32 holds exactly (magnitude ≤ 2**24) and every
    gain is a float32 number of moderate size: float32 subtraction is then exact, and float32 division
    rounds the exact quotient once, which equals rounding float64's correctly rounded quotient to float32
    (double rounding is harmless for division when the wider format has ≥ 2p+2 bits: 53 ≥ 2·24+2).
    """
    if not (np.all(baseline == np.round(baseline)) and np.all(np.abs(baseline) + _MAGNITUDE[fmt] <= 2**24)):
        return False
    magnitude = np.abs(gain)
    return bool(
        np.all(gain.astype(np.float32).astype(np.float64) == gain)
        and np.all((magnitude >= 2.0**-60) & (magnitude <= 2.0**60))
    )


def _read_with_numpy(folder: str, header: Header, files: tuple[_FileDecoding, ...]) -> RawRecord:
    """A record spread over several signal files, in physical units."""
    columns: list[np.ndarray] = []
    sig_len = header.sig_len
    for file_name, file in zip(header.file_names, files, strict=True):
        digital = _read_file(folder, file_name, file, sig_len)
        sig_len = digital.shape[0]
        columns.append(_to_physical(digital, file))
    position = [0] * len(files)
    parts = []
    for index in header.layout.file_index:
        parts.append(columns[index][:, position[index]])
        position[index] += 1
    layout = header.layout
    return RawRecord(
        signal=np.stack(parts, axis=1),
        fs=header.fs,
        sig_names=layout.sig_names,
        units=layout.units,
        comments=header.comments,
        storage_format=layout.storage_format,
        reader="numpy",
    )


def _read_file(folder: str, file_name: str, file: _FileDecoding, sig_len: int | None) -> np.ndarray:
    """Digital samples ``(n_samples, n_signals_in_file)`` of one signal file, checked against the header."""
    n_sig = file.n_sig
    try:
        raw = read_bytes(os.path.join(folder, file_name), file.byte_offset)
    except (FileNotFoundError, IsADirectoryError) as exc:
        raise RecordError(f"signal file missing: {file_name}") from exc
    per_sample = _BYTES_PER_SAMPLE[file.fmt]
    available = int(len(raw) // (per_sample * n_sig))
    sig_len = sig_len if sig_len is not None else available
    expected_bytes = int(np.ceil(sig_len * n_sig * per_sample))
    if len(raw) < expected_bytes:
        raise RecordError(
            f"truncated signal file {file_name}: header says {sig_len} samples × {n_sig} signals "
            f"({expected_bytes} bytes), file holds {len(raw)} bytes ({available} samples)"
        )
    if len(raw) > expected_bytes + (1 if file.fmt == "212" else 0):
        raise RecordError(
            f"sample count disagrees with {file_name}: header says {sig_len} samples, "
            f"file holds {available} samples"
        )
    data = raw if len(raw) == expected_bytes else raw[:expected_bytes]
    return _decode(data, file.fmt, sig_len * n_sig).reshape(sig_len, n_sig)


def _decode(raw: bytes, fmt: str, n_values: int) -> np.ndarray:
    """Digital sample values of an interleaved byte stream (integer array, native width where possible)."""
    buffer = np.frombuffer(raw, dtype=np.uint8)
    if fmt == "16":
        return np.frombuffer(raw, dtype="<i2")
    if fmt == "61":
        return np.frombuffer(raw, dtype=">i2")
    if fmt == "160":
        return np.frombuffer(raw, dtype="<u2").astype(np.int64) - 32768
    if fmt == "80":
        return buffer.astype(np.int64) - 128
    if fmt == "32":
        return np.frombuffer(raw, dtype="<i4")
    if fmt == "24":
        triples = buffer.reshape(-1, 3).astype(np.int64)
        values = triples[:, 0] | (triples[:, 1] << 8) | (triples[:, 2] << 16)
        return np.where(values >= 2**23, values - 2**24, values)
    if fmt == "212":
        padded = np.concatenate([buffer, np.zeros((-len(buffer)) % 3, np.uint8)]).reshape(-1, 3)
        triples = padded.astype(np.int64)
        first = triples[:, 0] | ((triples[:, 1] & 0x0F) << 8)
        second = triples[:, 2] | ((triples[:, 1] & 0xF0) << 4)
        values = np.stack([first, second], axis=1).reshape(-1)[:n_values]
        return np.where(values >= 2**11, values - 2**12, values)
    raise RecordError(f"unsupported storage format {fmt}")


def _to_physical(digital: np.ndarray, file: _FileDecoding) -> np.ndarray:
    """``(digital - baseline) / gain`` in float64, WFDB's invalid-sample value → NaN (as wfdb does)."""
    physical = digital.astype(np.float64)
    np.subtract(physical, file.baseline, out=physical)
    np.divide(physical, file.gain, out=physical)
    invalid = digital == _INVALID_SAMPLE[file.fmt]
    if invalid.any():
        physical[invalid] = np.nan
    return physical


def _read_with_wfdb(base: Path | str) -> RawRecord:
    import wfdb

    try:
        record = wfdb.rdrecord(str(base), physical=True, return_res=64, smooth_frames=True)
    except FileNotFoundError as exc:
        raise RecordError(f"signal file missing: {Path(str(exc.filename or exc)).name}") from exc
    except (ValueError, IndexError, TypeError, KeyError, OSError, NotImplementedError) as exc:
        raise RecordError(f"unreadable record ({type(exc).__name__}: {exc})") from exc
    if record.p_signal is None:
        raise RecordError("record holds no signal samples")
    fmt = record.fmt[0] if record.fmt else "multi-segment"
    names = tuple(record.sig_name or ())
    units = tuple(record.units or ())
    if None in units:
        units = _layout_units(base, names, units)
    return RawRecord(
        signal=np.asarray(record.p_signal, dtype=np.float64),
        fs=float(record.fs),
        sig_names=names,
        units=units,
        comments=tuple(record.comments or ()),
        storage_format=str(fmt),
        reader="wfdb",
    )


def _layout_units(base: Path | str, names: tuple[str, ...], units: tuple[str | None, ...]) -> tuple[str, ...]:
    """Units wfdb leaves unset (variable-layout multi-segment records) from the record's layout header;
    ``""`` where that does not say either."""
    import wfdb

    known: dict[str, str] = {}
    try:
        segments = wfdb.rdheader(str(base)).seg_name or []
        if segments and segments[0].endswith("_layout"):
            layout = wfdb.rdheader(os.path.join(os.path.dirname(base), segments[0]))
            known = {n: u for n, u in zip(layout.sig_name or (), layout.units or (), strict=False) if u}
    except (ValueError, IndexError, TypeError, KeyError, OSError, AttributeError):
        known = {}
    return tuple(u if u is not None else known.get(n, "") for n, u in zip(names, units, strict=False))
