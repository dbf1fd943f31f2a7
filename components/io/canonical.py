"""An in-memory signal → the canonical form the models read: ``(12, n)`` float32 mV + lead mask.

The same steps as ingest (:mod:`components.io.prepare`): lead mapping and units → mV with
:func:`~components.io.prepare.to_standard_leads`, polyphase resampling with
:func:`~components.io.prepare.resample`, then :func:`cut_or_pad` to the target length. Serving imports
this, so a request is turned into exactly what the model was trained and evaluated on; so do ingest
(:func:`cut_or_pad`) and the store view that feeds fine-tuning and evaluation (:func:`conform`): this is
the one place that cuts or pads a signal. ``prepare`` and this module import each other as modules (not
their names), so either can be imported first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

import components.io.prepare as ingest_steps


@dataclass(frozen=True)
class CanonicalSignal:
    """One record in canonical form."""

    signal: np.ndarray  # (12, target samples) float32, mV, standard lead order, absent leads zero
    lead_mask: np.ndarray  # (12,) bool
    n_valid_samples: int  # samples taken from the record; the rest is zero padding
    content_hash: str = ""  # ingest's content hash of the record at its own rate (hash_signal)


def cut_or_pad(
    signal: np.ndarray, target_samples: int, out: np.ndarray | None = None
) -> tuple[np.ndarray, int]:
    """``(..., 12, t)`` → ``(..., 12, target_samples)`` float32: the first samples, zero-padded; and how
    many are real.

    ``out`` (float32, of the result's shape) is filled in place when given, as ingest does with its
    reused batch buffers.
    """
    n_valid = min(signal.shape[-1], target_samples)
    fixed = np.zeros((*signal.shape[:-1], target_samples), dtype=np.float32) if out is None else out
    fixed[..., :n_valid] = signal[..., :n_valid]
    fixed[..., n_valid:] = 0.0
    return fixed, n_valid


def conform(signals: np.ndarray, fs: float, target_fs: int, target_samples: int) -> np.ndarray:
    """Canonical ``(..., 12, t)`` signals at ``fs`` → ``(..., 12, target_samples)`` float32 at
    ``target_fs`` (polyphase resampling, then :func:`cut_or_pad`): stored records as a model with another
    rate or length reads them."""
    fixed, _ = cut_or_pad(ingest_steps.resample(signals, fs, target_fs), target_samples)
    return fixed


def canonicalize(
    signal: np.ndarray,
    fs: float,
    lead_names: Sequence[str],
    units: str | Sequence[str] = "mV",
    *,
    target_fs: int,
    target_samples: int | None,
) -> CanonicalSignal:
    """``(leads, samples)`` physical values at ``fs`` → :class:`CanonicalSignal` at ``target_fs``, cut or
    padded to ``target_samples`` (None: the whole record, for :func:`split_windows`).

    ``units`` is one unit for every lead or one per lead (mV, uV, V, ...). Names that are not ECG leads
    are ignored, as in ingest; raises :class:`~components.io.wfdb_reader.RecordError` when no lead is
    present, a unit is not a voltage, or a lead holds no valid sample.
    """
    names = tuple(lead_names)
    unit_list = (units,) * len(names) if isinstance(units, str) else tuple(units)
    standard, mask = ingest_steps.to_standard_leads(np.asarray(signal).T, names, unit_list)
    content_hash = ingest_steps.hash_signal(standard.astype(np.float32), mask, fs)
    resampled = ingest_steps.resample(standard, fs, target_fs)
    fixed, n_valid = cut_or_pad(resampled, resampled.shape[-1] if target_samples is None else target_samples)
    return CanonicalSignal(fixed, mask, n_valid, content_hash)


def n_windows(n_valid: int, window: int) -> int:
    """How many windows of ``window`` samples :func:`split_windows` cuts ``n_valid`` samples into."""
    return max(1, -(-n_valid // window))


def window_starts(n_valid: int, window: int) -> np.ndarray:
    """Start of each window of ``window`` samples covering the first ``n_valid`` samples: back to back,
    the last one ending at the record's end (overlapping its neighbour when the length is not a multiple
    of the window); a record no longer than one window is one window at 0."""
    count = n_windows(n_valid, window)
    starts = np.arange(count, dtype=np.int64) * window
    starts[-1] = max(0, min(starts[-1], n_valid - window))
    return starts


def split_windows(signal: np.ndarray, n_valid: int, window: int) -> np.ndarray:
    """``(12, t)`` canonical signal → ``(k, 12, window)`` float32 windows covering its ``n_valid`` real
    samples (:func:`window_starts`); a record shorter than a window is one zero-padded window, as
    :func:`cut_or_pad` makes it."""
    if n_valid <= window:
        return cut_or_pad(signal[..., :n_valid], window)[0][None]
    starts = window_starts(n_valid, window)
    index = starts[:, None] + np.arange(window)[None, :]
    return np.ascontiguousarray(np.moveaxis(signal[:, index], 1, 0), dtype=np.float32)
