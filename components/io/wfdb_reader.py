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
from functools import cache
from pathlib import Path

import numpy as np

from components.io.wfdb_header import Header, HeaderError, SignalSpec, read_header

#: bytes per sample (212 packs two 12-bit samples into three bytes)
_BYTES_PER_SAMPLE: dict[str, float] = {"16": 2, "61": 2, "160": 2, "80": 1, "24": 3, "32": 4, "212": 1.5}
#: the digital value WFDB uses for "no sample" in each format
_INVALID_SAMPLE: dict[str, int] = {
    "16": -(2**15),
    "61": -(2**15),
    "160": -(2**15),
    "80": -(2**7),
    "24": -(2**23),
    "32": -(2**31),
    "212": -(2**11),
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


def read_record(base: Path) -> RawRecord:
    """Read the record whose header is ``base.hea``; raises :class:`RecordError` for broken records."""
    hea = f"{base}.hea"
    try:
        header = read_header(hea)
    except FileNotFoundError as exc:
        raise RecordError(f"header file missing: {os.path.basename(hea)}") from exc
    except HeaderError as exc:
        try:
            return _read_with_wfdb(base)
        except RecordError as fallback:
            raise RecordError(f"unparsable header {os.path.basename(hea)}: {exc} (wfdb: {fallback})") from exc
    unknown = sorted({s.fmt for s in header.signals} - WFDB_FORMATS)
    if unknown:
        raise RecordError(f"unknown storage format {', '.join(unknown)} (WFDB defines {_format_list()})")
    groups = _fast_path_groups(header)
    if groups is not None:
        return _read_with_numpy(base.parent, header, groups)
    return _read_with_wfdb(base)


def _format_list() -> str:
    return ", ".join(sorted(WFDB_FORMATS, key=int))


def _fast_path_groups(header: Header) -> dict[str, list[SignalSpec]] | None:
    """The signals grouped by file when NumPy decoding applies (each file one fast format at one offset,
    no frames or skew), else None."""
    if not header.signals or not all(s.samps_per_frame == 1 and s.skew == 0 for s in header.signals):
        return None
    groups = _signals_by_file(header)
    for group in groups.values():
        first = group[0]
        if first.fmt not in FAST_FORMATS or first.file_name.startswith("~"):
            return None
        if any(s.fmt != first.fmt or s.byte_offset != first.byte_offset for s in group):
            return None
    return groups


def _signals_by_file(header: Header) -> dict[str, list[SignalSpec]]:
    groups: dict[str, list[SignalSpec]] = {}
    for spec in header.signals:
        groups.setdefault(spec.file_name, []).append(spec)
    return groups


def _read_with_numpy(folder: Path, header: Header, groups: dict[str, list[SignalSpec]]) -> RawRecord:
    columns: dict[str, np.ndarray] = {}
    sig_len = header.sig_len
    for file_name, specs in groups.items():
        digital = _read_file(folder, file_name, specs, sig_len)
        sig_len = digital.shape[0]
        columns[file_name] = _to_physical(digital, specs)
    if len(groups) == 1:
        signal = next(iter(columns.values()))
    else:
        position = {file_name: 0 for file_name in groups}
        parts = []
        for spec in header.signals:
            parts.append(columns[spec.file_name][:, position[spec.file_name]])
            position[spec.file_name] += 1
        signal = np.stack(parts, axis=1)
    return RawRecord(
        signal=signal,
        fs=header.fs,
        sig_names=tuple(s.sig_name for s in header.signals),
        units=tuple(s.units for s in header.signals),
        comments=header.comments,
        storage_format=",".join(sorted({s.fmt for s in header.signals}, key=int)),
        reader="numpy",
    )


def _read_file(folder: Path, file_name: str, specs: list[SignalSpec], sig_len: int | None) -> np.ndarray:
    """Digital samples ``(n_samples, n_signals_in_file)`` of one signal file, checked against the header."""
    spec = specs[0]
    n_sig = len(specs)
    try:
        with open(os.path.join(folder, file_name), "rb") as handle:
            handle.seek(spec.byte_offset)
            raw = handle.read()
    except (FileNotFoundError, IsADirectoryError) as exc:
        raise RecordError(f"signal file missing: {file_name}") from exc
    per_sample = _BYTES_PER_SAMPLE[spec.fmt]
    available = int(len(raw) // (per_sample * n_sig))
    sig_len = sig_len if sig_len is not None else available
    expected_bytes = int(np.ceil(sig_len * n_sig * per_sample))
    if len(raw) < expected_bytes:
        raise RecordError(
            f"truncated signal file {file_name}: header says {sig_len} samples × {n_sig} signals "
            f"({expected_bytes} bytes), file holds {len(raw)} bytes ({available} samples)"
        )
    if len(raw) > expected_bytes + (1 if spec.fmt == "212" else 0):
        raise RecordError(
            f"sample count disagrees with {file_name}: header says {sig_len} samples, "
            f"file holds {available} samples"
        )
    return _decode(raw[:expected_bytes], spec.fmt, sig_len * n_sig).reshape(sig_len, n_sig)


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


def _to_physical(digital: np.ndarray, signals: list[SignalSpec]) -> np.ndarray:
    """``(digital - baseline) / gain`` in float64, WFDB's invalid-sample value → NaN (as wfdb does)."""
    invalid = digital == _INVALID_SAMPLE[signals[0].fmt]
    baseline, gain = _calibration(tuple((s.baseline, s.adc_gain) for s in signals))
    physical = digital.astype(np.float64)
    np.subtract(physical, baseline, out=physical)
    np.divide(physical, gain, out=physical)
    if invalid.any():
        physical[invalid] = np.nan
    return physical


@cache
def _calibration(pairs: tuple[tuple[int, float], ...]) -> tuple[np.ndarray, np.ndarray]:
    """Baselines and gains as arrays (cached: records of one site share their calibration)."""
    baselines, gains = zip(*pairs, strict=True)
    return np.array(baselines, dtype=np.float64), np.array(gains, dtype=np.float64)


def _read_with_wfdb(base: Path) -> RawRecord:
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
    return RawRecord(
        signal=np.asarray(record.p_signal, dtype=np.float64),
        fs=float(record.fs),
        sig_names=tuple(record.sig_name or ()),
        units=tuple(record.units or ()),
        comments=tuple(record.comments or ()),
        storage_format=str(fmt),
        reader="wfdb",
    )
