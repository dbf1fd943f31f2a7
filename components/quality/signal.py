"""Signal-quality features, vectorized over a batch of records ``(b, 12, T)`` in mV at one rate.

Per lead: non-finite fraction, longest constant run, clipping, amplitude range, baseline-wander,
mains and high-frequency power ratios. Per record: R-peak count and heart rate from a multi-lead
QRS envelope, Einthoven/Goldberger residuals, and a limb-lead (LA/RA) reversal score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft
from scipy.ndimage import maximum_filter1d, uniform_filter1d

from components.quality.params import SignalFeatureParams

LEAD_INDEX = {
    name: i
    for i, name in enumerate(("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"))
}

PER_LEAD_FEATURES = (
    "nonfinite_frac",
    "flat_run_s",
    "clip_frac",
    "range_mv",
    "baseline_ratio",
    "baseline_rms_mv",
    "powerline_ratio",
    "hf_ratio",
)


@dataclass(frozen=True)
class BatchFeatures:
    """One batch's features: ``per_lead`` values ``(b, 12)`` (NaN = absent lead), ``per_record`` ``(b,)``."""

    per_lead: dict[str, np.ndarray]
    per_record: dict[str, np.ndarray]


def longest_true_run(m: np.ndarray) -> np.ndarray:
    """Length of the longest run of True along the last axis."""
    c = np.cumsum(m, axis=-1, dtype=np.int32)
    reset = np.maximum.accumulate(np.where(m, 0, c), axis=-1)
    return (c - reset).max(axis=-1)


def aliased_frequency(f0: float, fs: float) -> float:
    """Where a tone at ``f0`` Hz appears after sampling at ``fs`` Hz (folded into ``[0, fs/2]``)."""
    return float(abs(((f0 + fs / 2) % fs) - fs / 2))


def _band_power(power: np.ndarray, freqs: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return power[..., mask].sum(axis=-1)


def _spectral(
    xc: np.ndarray, fs: float, p: SignalFeatureParams
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Power ratios per lead, plus the QRS-band and ECG-band filtered signals."""
    n = xc.shape[-1]
    spec = scipy.fft.rfft(xc, axis=-1, workers=p.fft_workers)
    freqs = np.fft.rfftfreq(n, 1.0 / fs)
    power = spec.real**2 + spec.imag**2
    nonzero = freqs > 0
    total = _band_power(power, freqs, nonzero) + 1e-12
    mains = np.zeros_like(freqs, dtype=bool)
    for f0 in p.powerline_hz:
        fa = aliased_frequency(f0, fs)
        mains |= np.abs(freqs - fa) <= p.powerline_halfwidth_hz
    low = _band_power(power, freqs, nonzero & (freqs < p.baseline_cutoff_hz))
    out = {
        "baseline_ratio": low / total,
        "baseline_rms_mv": np.sqrt(2.0 * low) / n,
        "powerline_ratio": _band_power(power, freqs, mains) / total,
        "hf_ratio": _band_power(power, freqs, (freqs >= p.hf_low_hz) & ~mains) / total,
    }
    qrs_mask = (freqs >= p.qrs_band_hz[0]) & (freqs <= p.qrs_band_hz[1])
    ecg_mask = (freqs >= p.ecg_band_hz[0]) & (freqs <= p.ecg_band_hz[1]) & ~mains
    qrs = scipy.fft.irfft(spec * qrs_mask, n=n, axis=-1, workers=p.fft_workers)
    ecg = scipy.fft.irfft(spec * ecg_mask, n=n, axis=-1, workers=p.fft_workers)
    return out, qrs.astype(np.float32, copy=False), ecg.astype(np.float32, copy=False)


def _rpeaks(
    qrs: np.ndarray, usable: np.ndarray, valid_t: np.ndarray, fs: float, p: SignalFeatureParams
) -> np.ndarray:
    """Boolean ``(b, T)`` R-peak positions from a lead-normalized QRS energy envelope."""
    energy = qrs**2
    norm = energy.mean(axis=-1, keepdims=True) + 1e-12
    env = ((energy / norm) * usable[..., None]).sum(axis=1)
    env = uniform_filter1d(env, size=max(1, round(p.envelope_window_s * fs)), axis=-1)
    env *= valid_t
    ref = np.percentile(env, 98, axis=-1, keepdims=True)
    local_max = maximum_filter1d(env, size=max(3, round(p.refractory_s * fs) | 1), axis=-1) == env
    return local_max & (env > p.peak_threshold * ref) & (ref > 0)


def _heart_rate(peaks: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """Peak count and mean heart rate (bpm; 0 where fewer than two peaks)."""
    count = peaks.sum(axis=-1)
    t = peaks.shape[-1]
    first = peaks.argmax(axis=-1)
    last = t - 1 - peaks[:, ::-1].argmax(axis=-1)
    span = (last - first) / fs
    with np.errstate(divide="ignore", invalid="ignore"):
        hr = np.where(count >= 2, 60.0 * (count - 1) / np.where(span > 0, span, 1.0), 0.0)
    return count.astype(np.int32), hr


def _limb_reversal(ecg: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """LA/RA reversal score: corr(aVR, V6) − corr(I, V6) on the ECG-band signal.

    Lead I and V6 both look leftward (positive correlation) and aVR looks away; an arm swap inverts I
    and turns aVR into aVL, so the score moves from about −1.5 towards +1.5. Chest leads are untouched
    by a limb swap, which makes V6 the reference.
    """
    v6 = ecg[:, LEAD_INDEX["V6"]]

    def corr(a: np.ndarray) -> np.ndarray:
        return (a * v6).sum(-1) / (np.sqrt((a**2).sum(-1) * (v6**2).sum(-1)) + 1e-12)

    score = corr(ecg[:, LEAD_INDEX["aVR"]]) - corr(ecg[:, LEAD_INDEX["I"]])
    needed = [LEAD_INDEX[name] for name in ("I", "aVR", "V6")]
    return np.where(mask[:, needed].all(axis=1), score, np.nan)


def _limb_consistency(xc: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Einthoven (III = II − I) and Goldberger (augmented leads) residual RMS relative to limb-lead RMS."""
    i, ii, iii = xc[:, 0], xc[:, 1], xc[:, 2]
    avr, avl, avf = xc[:, 3], xc[:, 4], xc[:, 5]
    scale = np.sqrt((i**2 + ii**2).mean(axis=-1) / 2) + 1e-6

    def rms(r: np.ndarray) -> np.ndarray:
        return np.sqrt((r**2).mean(axis=-1))

    einthoven = rms(iii - (ii - i)) / scale
    goldberger = (
        np.maximum.reduce([rms(avr + (i + ii) / 2), rms(avl - (i - iii) / 2), rms(avf - (ii + iii) / 2)])
        / scale
    )
    has_e = mask[:, :3].all(axis=1)
    has_g = mask[:, :6].all(axis=1)
    return np.where(has_e, einthoven, np.nan), np.where(has_g, goldberger, np.nan)


@dataclass(frozen=True)
class _Samples:
    """A batch's measurable samples: finite and before the zero padding (``ok``), zero elsewhere (``xz``)."""

    x: np.ndarray
    n_valid: np.ndarray
    valid_t: np.ndarray
    ok: np.ndarray
    xz: np.ndarray
    nok: np.ndarray
    has_data: np.ndarray
    top: np.ndarray
    bottom: np.ndarray
    flat_run_s: np.ndarray


def _samples(x: np.ndarray, n_valid: np.ndarray, fs: float, params: SignalFeatureParams) -> _Samples:
    x = np.asarray(x, dtype=np.float32)
    t = x.shape[-1]
    n_valid = np.clip(np.asarray(n_valid, dtype=np.int64), 1, t)
    valid_t = np.arange(t)[None, :] < n_valid[:, None]
    ok = np.isfinite(x) & valid_t[:, None, :]
    xz = np.where(ok, x, np.float32(0))
    top = np.where(ok, x, -np.inf).max(axis=-1)
    bottom = np.where(ok, x, np.inf).min(axis=-1)
    has_data = np.isfinite(top)
    step = np.abs(np.diff(xz, axis=-1)) <= params.flat_tolerance_mv
    step &= ok[..., 1:] & ok[..., :-1]
    return _Samples(
        x=x,
        n_valid=n_valid,
        valid_t=valid_t,
        ok=ok,
        xz=xz,
        nok=np.maximum(ok.sum(axis=-1), 1),
        has_data=has_data,
        top=np.where(has_data, top, 0),
        bottom=np.where(has_data, bottom, 0),
        flat_run_s=longest_true_run(step) / fs,
    )


def _centred(s: _Samples) -> np.ndarray:
    mean = s.xz.sum(axis=-1) / s.nok
    return np.where(s.ok, s.xz - mean[..., None].astype(np.float32), np.float32(0))


def _usable(s: _Samples, mask: np.ndarray, fs: float) -> np.ndarray:
    """Leads the R-peak detector listens to: present, measured, and not flat for half the record."""
    usable: np.ndarray = mask & s.has_data & (s.flat_run_s < 0.5 * s.n_valid[:, None] / fs)
    return usable


def _clip_frac(s: _Samples, tol: float) -> np.ndarray:
    at_top = s.ok & (s.xz >= (s.top - tol)[..., None])
    at_bottom = s.ok & (s.xz <= (s.bottom + tol)[..., None])

    def in_runs(m: np.ndarray) -> np.ndarray:
        pair = m[..., 1:] & m[..., :-1]
        run = np.zeros_like(m)
        run[..., 1:] |= pair
        run[..., :-1] |= pair
        count: np.ndarray = run.sum(axis=-1)
        return count

    frac: np.ndarray = np.maximum(in_runs(at_top), in_runs(at_bottom)) / s.nok
    return frac


def rpeak_mask(
    x: np.ndarray,
    lead_mask: np.ndarray,
    fs: float,
    params: SignalFeatureParams,
    n_valid: np.ndarray | None = None,
) -> np.ndarray:
    """Boolean ``(b, T)`` R-peak positions of ``x`` ``(b, 12, T)`` mV: the detector behind ``rpeak_count``.

    ``n_valid`` ``(b,)`` is the number of samples before zero padding (all of them by default).
    """
    x = np.asarray(x, dtype=np.float32)
    n_valid = np.full(len(x), x.shape[-1]) if n_valid is None else n_valid
    s = _samples(x, n_valid, fs, params)
    _, qrs, _ = _spectral(_centred(s), fs, params)
    return _rpeaks(qrs, _usable(s, np.asarray(lead_mask, dtype=bool), fs), s.valid_t, fs, params)


def padded_positions(peaks: np.ndarray, width: int | None = None) -> np.ndarray:
    """``(b, T)`` bool → ``(b, k)`` int32 sample positions in increasing order, padded with -1.

    ``k`` is ``width`` or, by default, the largest count in the batch (at least 1).
    """
    counts = peaks.sum(axis=-1)
    k = max(1, int(counts.max(initial=0))) if width is None else width
    out = np.full((len(peaks), k), -1, dtype=np.int32)
    rows, cols = np.nonzero(peaks)
    rank = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
    keep = rank < k
    out[rows[keep], rank[keep]] = cols[keep]
    return out


def rpeak_positions(
    x: np.ndarray,
    lead_mask: np.ndarray,
    fs: float,
    params: SignalFeatureParams,
    n_valid: np.ndarray | None = None,
) -> np.ndarray:
    """R-peak sample positions ``(b, k)`` int32, padded with -1, of ``x`` ``(b, 12, T)`` mV.

    The same detector as the quality checks (:func:`rpeak_mask`), with their ``params`` (the validation
    policy's ``features``).
    """
    return padded_positions(rpeak_mask(x, lead_mask, fs, params, n_valid))


def batch_features(
    x: np.ndarray, fs: float, lead_mask: np.ndarray, n_valid: np.ndarray, params: SignalFeatureParams
) -> BatchFeatures:
    """Compute all signal features for a batch ``x`` of shape ``(b, 12, T)``.

    ``lead_mask`` ``(b, 12)`` marks present leads; ``n_valid`` ``(b,)`` is the number of samples before
    zero padding. Only present leads and valid samples are measured.
    """
    s = _samples(x, n_valid, fs, params)
    mask = np.asarray(lead_mask, dtype=bool)
    nonfinite_frac = ((~np.isfinite(s.x)) & s.valid_t[:, None, :]).sum(axis=-1) / s.n_valid[:, None]
    xc = _centred(s)
    ratios, qrs, ecg = _spectral(xc, fs, params)
    peaks = _rpeaks(qrs, _usable(s, mask, fs), s.valid_t, fs, params)
    count, hr = _heart_rate(peaks, fs)
    einthoven, goldberger = _limb_consistency(xc, mask)
    reversal = _limb_reversal(ecg, mask & s.has_data)

    per_lead = {
        "nonfinite_frac": nonfinite_frac,
        "flat_run_s": s.flat_run_s,
        "clip_frac": _clip_frac(s, params.clip_tolerance_mv),
        "range_mv": s.top - s.bottom,
        **ratios,
    }
    per_lead = {k: np.where(mask, v, np.nan).astype(np.float32) for k, v in per_lead.items()}
    per_record = {
        "rpeak_count": count,
        "hr_bpm": hr.astype(np.float32),
        "einthoven_residual": einthoven.astype(np.float32),
        "goldberger_residual": goldberger.astype(np.float32),
        "limb_reversal_score": reversal.astype(np.float32),
        "n_leads_present": mask.sum(axis=1).astype(np.int32),
        "valid_duration_s": (s.n_valid / fs).astype(np.float32),
    }
    return BatchFeatures(per_lead=per_lead, per_record=per_record)
