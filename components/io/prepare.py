"""Turn one record reference into a canonical record (or a reason it cannot be one).

Canonical: the 12 standard leads in order with a presence mask, values in mV, resampled to the target
rate with a polyphase anti-aliasing filter, cut or zero-padded to the target length, float32.
This is the preprocessing every later stage (training, serving) imports; it is never copied.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import numpy as np
from scipy.signal import resample_poly

import components.io.canonical as canonical
from components.io.leads import N_LEADS, STANDARD_LEADS, lead_positions, repeated_lead
from components.io.sources import RecordMeta, RecordRef, complete_meta
from components.io.wfdb_reader import DigitalRecord, RecordError, read_samples

#: factor from a header's units to mV
_TO_MV = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3, "nv": 1e-6}
_ALL_LEADS = tuple(range(N_LEADS))
_FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class PreparedRecord:
    """A record ready for the store."""

    ref: RecordRef
    meta: RecordMeta
    signal: np.ndarray  # (12, target samples) float32, mV
    lead_mask: np.ndarray  # (12,) bool
    content_hash: str
    fs_original: float
    n_samples_original: int
    units_original: str
    storage_format: str
    n_valid_samples: int


@dataclass(frozen=True)
class RejectedRecord:
    """A record that goes to the quarantine, with the reason."""

    ref: RecordRef
    reason: str


def prepare(
    ref: RecordRef, target_fs: int, target_samples: int | None, out: np.ndarray | None = None
) -> PreparedRecord | RejectedRecord:
    """Read, check and canonicalise one record; never raises for a bad record.

    ``target_samples`` None keeps the whole record (batch inference splits it into windows).

    ``out`` (optional, ``(12, target_samples)`` float32) receives the whole signal in place, so a caller
    filling a reused batch buffer avoids allocations; a rejected record leaves it untouched.
    """
    if ref.problem is not None or ref.base is None:
        return RejectedRecord(ref, ref.problem or "record has no location")
    try:
        record = read_samples(ref.base)
        if isinstance(record, DigitalRecord) and (plan := _direct_plan(record, target_fs)) is not None:
            into = out if out is not None and record.digital.shape[0] == target_samples else None
            single, mask = _standard_leads_float32(record, plan, into)
            signal = single
        else:
            raw = record.physical() if isinstance(record, DigitalRecord) else record
            signal, mask = to_standard_leads(raw.signal, raw.sig_names, raw.units)
            single = signal.astype(np.float32)
    except RecordError as exc:
        return RejectedRecord(ref, str(exc))
    if signal.shape[1] == 0:
        return RejectedRecord(ref, "record holds no samples (length 0)")
    if (problem := rate_problem(record.fs, target_fs)) is not None:
        return RejectedRecord(ref, problem)
    content_hash = hash_signal(single, mask, record.fs)
    resampled = single if _same_rate(record.fs, target_fs) else resample(signal, record.fs, target_fs)
    if out is not None and resampled is out:  # the direct path wrote the whole signal in place
        fixed, n_valid = out, out.shape[-1]
    else:
        length = resampled.shape[-1] if target_samples is None else target_samples
        fixed, n_valid = canonical.cut_or_pad(resampled, length, out)
    return PreparedRecord(
        ref=ref,
        meta=complete_meta(ref, record.comments),
        signal=fixed,
        lead_mask=mask,
        content_hash=content_hash,
        fs_original=float(record.fs),
        n_samples_original=int(signal.shape[1]),
        units_original=_lead_units(record.sig_names, record.units),
        storage_format=record.storage_format,
        n_valid_samples=int(n_valid),
    )


@dataclass(frozen=True)
class _DirectPlan:
    """How the float32 canonical signal of a layout comes straight from its digital samples."""

    channels: list[int]  # file channels that feed standard leads …
    targets: list[int]  # … and the standard lead each one feeds
    identity: bool  # the file holds exactly the 12 standard leads in order
    zero_baseline: bool  # every baseline is 0: (d - 0) / g is d / g, one pass fewer
    mask: np.ndarray  # (12,) bool, read-only (callers get a copy)
    baseline: np.ndarray  # (channels, 1) float32
    gain: np.ndarray  # (channels, 1) float32


def _direct_plan(record: DigitalRecord, target_fs: int) -> _DirectPlan | None:
    """The plan when the float32 canonical signal can come straight from the digital samples, bit-identical
    to rounding the float64 physical values: no resampling, leads already in mV, exact calibration."""
    if not (record.float32_exact and _same_rate(record.fs, target_fs)):
        return None
    return _cached_direct_plan(
        record.sig_names,
        record.units,
        record.digital.shape[1],
        record.baseline.tobytes(),
        record.gain.tobytes(),
    )


@lru_cache(maxsize=1024)
def _cached_direct_plan(
    names: tuple[str, ...], units: tuple[str, ...], n_sig: int, baseline: bytes, gain: bytes
) -> _DirectPlan | None:
    channels, targets, factors = _lead_plan(names, units)
    if factors is not None:
        return None
    mask = np.zeros(N_LEADS, dtype=bool)
    mask[list(targets)] = True
    mask.flags.writeable = False
    chosen = list(channels)
    return _DirectPlan(
        channels=chosen,
        targets=list(targets),
        identity=channels == targets == _ALL_LEADS and n_sig == N_LEADS,
        zero_baseline=not np.frombuffer(baseline, dtype=np.float64)[chosen].any(),
        mask=mask,
        baseline=np.frombuffer(baseline, dtype=np.float64)[chosen].astype(np.float32)[:, None],
        gain=np.frombuffer(gain, dtype=np.float64)[chosen].astype(np.float32)[:, None],
    )


def _standard_leads_float32(
    record: DigitalRecord, plan: _DirectPlan, out: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`to_standard_leads` of ``record.physical()`` as float32, computed in float32 from the digital
    samples (see :func:`components.io.wfdb_reader.float32_exact` for why the values are identical).

    ``out`` (``(12, n_samples)`` float32), when given, receives the signal; it is written only once the
    record has passed its checks.
    """
    digital = record.digital
    any_invalid = record.has_invalid_samples()
    if any_invalid:
        invalid = digital == record.invalid_value
        empty = invalid.all(axis=0)[plan.channels]
        if empty.any():
            lead = STANDARD_LEADS[plan.targets[int(np.argmax(empty))]]
            raise RecordError(f"lead {lead} holds no valid samples (all NaN)")
    signal = np.zeros((N_LEADS, digital.shape[0]), dtype=np.float32) if out is None else out
    if plan.identity:
        if plan.zero_baseline:
            np.divide(digital.T, plan.gain, out=signal, dtype=np.float32)
        else:
            np.subtract(digital.T, plan.baseline, out=signal, dtype=np.float32)
            np.divide(signal, plan.gain, out=signal)
        if any_invalid:
            signal[invalid.T] = np.nan
    else:
        selected = np.subtract(digital.T[plan.channels], plan.baseline, dtype=np.float32)
        np.divide(selected, plan.gain, out=selected)
        if any_invalid:
            selected[invalid.T[plan.channels]] = np.nan
        if out is not None:
            signal[:] = 0.0
        signal[plan.targets] = selected
    return signal, plan.mask.copy()


@lru_cache(maxsize=1024)
def _lead_units(names: tuple[str, ...], units: tuple[str, ...]) -> str:
    """The distinct units of the channels that are standard leads, comma-separated."""
    positions = lead_positions(names)
    return ",".join(sorted({u for u, p in zip(units, positions, strict=False) if p is not None}))


def to_standard_leads(
    signal: np.ndarray, names: tuple[str, ...], units: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """``(n_samples, n_sig)`` physical signals → ``(12, n_samples)`` mV in standard order + presence mask.

    Channels that are not ECG leads (Frank leads, blood pressure, …) are ignored. Raises
    :class:`RecordError` when no lead is present, two channels are the same lead, a lead is not in a
    voltage unit, a present lead holds no valid sample, or a value is beyond float32.
    """
    channels, targets, factors = _lead_plan(tuple(names), tuple(units))
    selected = signal.T[list(channels)]
    if selected.shape[1]:
        empty = ~np.isfinite(selected).any(axis=1)
        if empty.any():
            lead = STANDARD_LEADS[targets[int(np.argmax(empty))]]
            raise RecordError(f"lead {lead} holds no valid samples (all NaN)")
    mask = np.zeros(N_LEADS, dtype=bool)
    mask[list(targets)] = True
    if targets == _ALL_LEADS and factors is None:
        out = np.ascontiguousarray(selected)
    else:
        out = np.zeros((N_LEADS, signal.shape[0]), dtype=np.float64)
        out[list(targets)] = selected if factors is None else selected * np.array(factors)[:, None]
    _check_float32_range(out)
    return out, mask


def _check_float32_range(signal: np.ndarray) -> None:
    """:class:`RecordError` when a value is beyond float32 (the store's and the models' type): the gain
    or unit must be wrong."""
    if signal.size == 0:
        return
    with np.errstate(invalid="ignore"):
        peaks = np.fmax.reduce(np.abs(signal), axis=1)  # fmax: NaN (invalid samples) never wins
    if peaks.max() > _FLOAT32_MAX:
        lead = STANDARD_LEADS[int(np.argmax(peaks))]
        raise RecordError(
            f"lead {lead} reaches {peaks.max():.3g} mV, beyond the float32 range: is its gain or unit right?"
        )


@lru_cache(maxsize=1024)
def _lead_plan(
    names: tuple[str, ...], units: tuple[str, ...]
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[float, ...] | None]:
    """Which channels feed which standard lead, and the factor to mV (None when all are mV already)."""
    positions = lead_positions(names)
    if not any(p is not None for p in positions):
        raise RecordError(f"no standard ECG lead among the signals {list(names)}")
    if (repeated := repeated_lead(names)) is not None:
        raise RecordError(repeated)
    channels: list[int] = []
    targets: list[int] = []
    factors: list[float] = []
    for channel, position in enumerate(positions):
        if position is None:
            continue
        unit = units[channel] if channel < len(units) else "mV"
        if not unit:
            raise RecordError(f"lead {STANDARD_LEADS[position]} has no units in its header")
        factor = _TO_MV.get(unit.strip().lower())
        if factor is None:
            raise RecordError(f"lead {STANDARD_LEADS[position]} is in units {unit!r}, not a voltage")
        channels.append(channel)
        targets.append(position)
        factors.append(factor)
    return tuple(channels), tuple(targets), None if all(f == 1.0 for f in factors) else tuple(factors)


def _same_rate(fs: float, target_fs: int) -> bool:
    return abs(fs - target_fs) < 1e-9


#: the most a record is upsampled by (a lower rate is not an ECG; resampling it would only cost memory)
MAX_UPSAMPLING = 100
#: the most a record is downsampled by (:func:`resample`'s ratios have denominators up to 1000)
MAX_DOWNSAMPLING = 1000


def rate_problem(fs: float, target_fs: int) -> str | None:
    """Why a record at ``fs`` cannot be resampled to ``target_fs``, or None."""
    if not (math.isfinite(fs) and fs > 0):
        return f"sampling rate {fs:g} Hz is not a rate"
    if target_fs / fs > MAX_UPSAMPLING:
        factor = target_fs / fs
        return (
            f"sampling rate {fs:g} Hz is too low: resampling to {target_fs} Hz would upsample {factor:.0f}×"
        )
    if fs / target_fs > MAX_DOWNSAMPLING:
        return f"sampling rate {fs:g} Hz is too high to resample to {target_fs} Hz (more than 1000:1)"
    return None


def resample(signal: np.ndarray, fs: float, target_fs: int) -> np.ndarray:
    """Polyphase resampling along the last axis (no-op when the rates match); :class:`RecordError` for a
    rate :func:`rate_problem` refuses."""
    if _same_rate(fs, target_fs):
        return signal
    if (problem := rate_problem(fs, target_fs)) is not None:
        raise RecordError(problem)
    ratio = Fraction(target_fs / fs).limit_denominator(1000)
    return resample_poly(signal, ratio.numerator, ratio.denominator, axis=-1)


def hash_signal(signal: np.ndarray, mask: np.ndarray, fs: float) -> str:
    """Content hash of a canonical record at its original rate: SHA-256 of its float32 mV values.

    The same recording therefore hashes the same whatever file format, lead order or lead spelling it
    arrives in (WFDB 16/212/.mat, ``avr``/``aVR``); rate, length and lead mask are part of the hash.
    """
    mask_text = _mask_text(np.asarray(mask, dtype=bool).tobytes())
    digest = hashlib.sha256()
    digest.update(f"fs={fs:.6f};n={signal.shape[-1]};mask={mask_text};".encode())
    digest.update(np.ascontiguousarray(signal, dtype="<f4").data)
    return digest.hexdigest()


@lru_cache(maxsize=4096)
def _mask_text(mask: bytes) -> str:
    """``"110…"`` for a lead mask given as the bytes of a bool array."""
    return "".join("1" if byte else "0" for byte in mask)
