"""A request's signal → the canonical input of a model, or a :class:`RequestError` saying what is wrong.

The checks come first (shape, finiteness, lead names — :func:`receive_signal`, before a model is chosen
—, then the leads the model needs, length, rate), then :func:`components.io.canonical.canonicalize` —
the training code — does lead mapping, units → mV and resampling. A task model reads the whole record in
windows of its length (:func:`components.io.canonical.split_windows`, at most ``windows.max_windows``);
the foundation model's endpoints read the first window only.
"""

from __future__ import annotations

import binascii
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pybase64

from components.io.canonical import CanonicalSignal, canonicalize, n_windows, split_windows
from components.io.leads import STANDARD_LEADS, repeated_lead, standard_lead
from components.io.wfdb_reader import RecordError
from components.serving.errors import RequestError
from components.serving.params import ServeParams
from components.serving.schemas import EncodedSignal
from components.tasks.windows import WindowParams


@dataclass(frozen=True)
class InputSpec:
    """What a model reads, for checking requests against it."""

    what: str  # named in messages, e.g. "task superdiagnostic"
    fs: int
    n_samples: int
    leads: tuple[str, ...]  # leads the model reads
    needed_leads: tuple[str, ...]  # leads every request must carry (empty: at least one of `leads`)

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.fs


@dataclass(frozen=True)
class ReceivedSignal:
    """A request's signal with its shape, lead names and values checked, before it meets a model."""

    array: np.ndarray  # (channels, samples) float64, as sent
    fs: float
    names: tuple[str, ...]  # channel names as sent
    units: str | tuple[str, ...]
    leads_present: tuple[str, ...]  # standard leads carried, in standard order


@dataclass(frozen=True)
class PreparedInput:
    """A checked request in canonical form, and what was done to it."""

    canonical: CanonicalSignal  # the whole record at the model's rate (cut to one window without windows)
    windows: np.ndarray  # (k, 12, model samples) float32: what the model reads, one row per window
    fs: float
    n_samples: int
    leads_present: tuple[str, ...]
    leads_used: tuple[str, ...]

    @property
    def n_windows(self) -> int:
        return int(self.windows.shape[0])


def decode_signal(encoded: EncodedSignal) -> np.ndarray:
    """The ``leads × samples`` array a base64 :class:`EncodedSignal` holds; :class:`RequestError` when the
    text is not base64 or its length does not match ``shape`` and ``dtype``."""
    try:
        raw = pybase64.b64decode(encoded.data, validate=True)  # strict RFC 4648, as base64.b64decode's
    except (binascii.Error, ValueError) as exc:
        raise RequestError(f"signal.data is not valid base64: {exc}") from exc
    dtype = np.dtype(encoded.dtype).newbyteorder("<")
    n_leads, n_samples = encoded.shape
    expected = n_leads * n_samples * dtype.itemsize
    if len(raw) != expected:
        raise RequestError(
            f"signal.data decodes to {len(raw)} bytes but shape {list(encoded.shape)} of {encoded.dtype} "
            f"needs {expected} ({n_leads} × {n_samples} × {dtype.itemsize})"
        )
    return np.frombuffer(raw, dtype=dtype).reshape(n_leads, n_samples)


def as_signal_array(signal: Sequence[Sequence[float]] | np.ndarray | EncodedSignal) -> np.ndarray:
    """``leads × samples`` float64; :class:`RequestError` for ragged rows, bad encodings or a non-numeric
    array."""
    if isinstance(signal, EncodedSignal):
        signal = decode_signal(signal)
    if isinstance(signal, np.ndarray):
        if signal.dtype.kind not in "iuf":
            raise RequestError(f"the signal must hold numbers, not {signal.dtype} values")
        array = signal.astype(np.float64, copy=False)
    else:
        lengths = {len(row) for row in signal}
        if len(lengths) > 1:
            first = len(signal[0])
            bad = next(i for i, row in enumerate(signal) if len(row) != first)
            raise RequestError(
                f"the signal is ragged: row 0 has {first} samples but row {bad} has {len(signal[bad])}; "
                "every lead needs the same number of samples"
            )
        array = np.asarray(signal, dtype=np.float64)
    if array.ndim != 2:
        raise RequestError(f"the signal must be 2-D (leads × samples), got shape {list(array.shape)}")
    return array


def receive_signal(
    signal: Sequence[Sequence[float]] | np.ndarray | EncodedSignal,
    fs: float,
    leads: Sequence[str],
    units: str | Sequence[str],
    *,
    other_channels: bool = False,
) -> ReceivedSignal:
    """Check a ``leads × samples`` signal's shape, lead names and values (no model needed yet).

    ``other_channels=True`` (WFDB records) ignores channels that are not ECG leads, as ingest does;
    otherwise every name must be a lead. Two channels of one lead are refused either way, as in ingest.
    """
    array = as_signal_array(signal)
    _check_shape(array, leads)
    rows, present = _lead_rows(leads, other_channels)
    _check_finite(array, leads, rows)
    ordered = tuple(lead for lead in STANDARD_LEADS if lead in present)
    unit = units if isinstance(units, str) else tuple(units)
    return ReceivedSignal(array, float(fs), tuple(leads), unit, ordered)


def fit_input(
    received: ReceivedSignal, spec: InputSpec, limits: ServeParams, windows: WindowParams | None = None
) -> PreparedInput:
    """A received signal checked against ``spec`` (leads, rate, length) and turned into its canonical input.

    With ``windows`` the whole record is read in windows of the model's length (at most
    ``windows.max_windows``); without, it is cut to its first window (the foundation model's endpoints).
    """
    array, fs = received.array, received.fs
    _check_leads(received.leads_present, spec)
    _check_rate_and_length(array.shape[1], fs, spec, limits)
    target = None if windows is not None else spec.n_samples
    try:
        canonical = canonicalize(
            array, fs, received.names, received.units, target_fs=spec.fs, target_samples=target
        )
    except RecordError as exc:
        raise RequestError(str(exc)) from exc
    if windows is None:
        cut = canonical.signal[None]
    else:
        _check_windows(canonical.n_valid_samples, array.shape[1], fs, spec, windows)
        cut = split_windows(canonical.signal, canonical.n_valid_samples, spec.n_samples)
    present = received.leads_present
    used = tuple(lead for lead in present if lead in spec.leads)
    return PreparedInput(canonical, cut, fs, int(array.shape[1]), present, used)


def prepare_input(
    signal: Sequence[Sequence[float]] | np.ndarray | EncodedSignal,
    fs: float,
    leads: Sequence[str],
    units: str | Sequence[str],
    spec: InputSpec,
    limits: ServeParams,
    *,
    other_channels: bool = False,
    windows: WindowParams | None = None,
) -> PreparedInput:
    """:func:`receive_signal` then :func:`fit_input`: a request checked against ``spec`` in canonical form."""
    received = receive_signal(signal, fs, leads, units, other_channels=other_channels)
    return fit_input(received, spec, limits, windows)


def _check_shape(array: np.ndarray, leads: Sequence[str]) -> None:
    n_rows, n_samples = array.shape
    if n_rows != len(leads):
        hint = ""
        if n_samples == len(leads):
            hint = " (it looks transposed: send one row per lead, i.e. leads × samples)"
        raise RequestError(
            f"the signal has {n_rows} rows but {len(leads)} lead names were given{hint}; "
            "signal must be leads × samples with one name per row"
        )
    if n_samples == 0:
        raise RequestError("the signal holds no samples")


def _check_finite(array: np.ndarray, leads: Sequence[str], rows: list[int]) -> None:
    bad = ~np.isfinite(array[rows])
    if not bad.any():
        return
    row, col = (int(i[0]) for i in np.nonzero(bad))
    raise RequestError(
        f"the signal holds {int(bad.sum())} non-finite values (NaN or infinity); the first is lead "
        f"{leads[rows[row]]!r} at sample {col}: send finite numbers only"
    )


def _lead_rows(leads: Sequence[str], other_channels: bool) -> tuple[list[int], tuple[str, ...]]:
    """Rows that feed a standard lead, and those leads; :class:`RequestError` for bad names."""
    names = [standard_lead(name) for name in leads]
    unknown = [raw for raw, name in zip(leads, names, strict=True) if name is None]
    if unknown and not other_channels:
        raise RequestError(
            f"unknown lead name(s) {unknown}; use the standard leads {', '.join(STANDARD_LEADS)} "
            "(spellings such as 'avr', 'D1' or 'lead II' are recognised)"
        )
    if (repeated := repeated_lead(leads)) is not None:
        raise RequestError(repeated)
    rows = [row for row, name in enumerate(names) if name is not None]
    if not rows:
        raise RequestError(f"no standard ECG lead among the channels {list(leads)}")
    return rows, tuple(name for name in names if name is not None)


def _check_leads(present: Sequence[str], spec: InputSpec) -> None:
    if spec.needed_leads:
        missing = [lead for lead in spec.needed_leads if lead not in present]
        if missing:
            raise RequestError(
                f"{spec.what} needs the leads {list(spec.needed_leads)}; the request lacks {missing} "
                f"(it has {sorted(present, key=STANDARD_LEADS.index)})"
            )
    elif not set(present) & set(spec.leads):
        raise RequestError(f"{spec.what} reads the leads {list(spec.leads)}; the request has none of them")


def _check_rate_and_length(n_samples: int, fs: float, spec: InputSpec, limits: ServeParams) -> None:
    if not (limits.min_fs_hz <= fs <= limits.max_fs_hz):
        raise RequestError(
            f"sampling rate {fs:g} Hz is outside the accepted range "
            f"{limits.min_fs_hz:g}-{limits.max_fs_hz:g} Hz"
        )
    needed = limits.min_duration_s if limits.min_duration_s is not None else spec.duration_s
    duration = n_samples / fs
    if duration + 1e-9 < needed:
        raise RequestError(
            f"the signal is too short: {n_samples} samples at {fs:g} Hz is {duration:.2f} s; "
            f"{spec.what} needs at least {needed:g} s"
        )


def _check_windows(n_valid: int, n_samples: int, fs: float, spec: InputSpec, windows: WindowParams) -> None:
    count = n_windows(n_valid, spec.n_samples)
    if count > windows.max_windows:
        limit_s = windows.max_windows * spec.duration_s
        raise RequestError(
            f"the signal is too long: {n_samples} samples at {fs:g} Hz is {n_samples / fs:.2f} s, "
            f"{count} windows of {spec.duration_s:g} s; {spec.what} reads at most {windows.max_windows} "
            f"windows ({limit_s:g} s): send the record in parts of at most {limit_s:g} s"
        )
