"""The per-record signal-quality features that drift monitoring compares between training data and traffic.

A few of the validation features (:func:`~components.quality.signal.batch_features` and their per-record
aggregates, :func:`~components.quality.features.record_columns`), chosen because each one moves with a
defect or a change of population that matters to a model, and none depends on other records:

- ``hr_bpm``: heart rate from the multi-lead R-peak detector (case mix; a wrong sampling rate);
- ``range_mv_max``: the largest lead's peak-to-peak amplitude (gain and unit errors, another device);
- ``baseline_ratio_max``, ``powerline_ratio_max``, ``hf_ratio_max``: the share of power in the
  baseline-wander band, the (aliased) mains bands and the high-frequency (EMG) band of the worst lead;
- ``flat_run_s_max``: the longest constant run of any lead (a disconnected electrode);
- ``clip_frac_max``: the share of samples at a lead's rail (saturation);
- ``limb_reversal_score``: the LA/RA reversal score (swapped arm electrodes);
- ``n_leads_present``: how many leads the records carry.
"""

from __future__ import annotations

import numpy as np

from components.quality.features import record_columns
from components.quality.params import SignalFeatureParams
from components.quality.signal import batch_features

MONITORED_FEATURES: tuple[str, ...] = (
    "hr_bpm",
    "range_mv_max",
    "baseline_ratio_max",
    "powerline_ratio_max",
    "hf_ratio_max",
    "flat_run_s_max",
    "clip_frac_max",
    "limb_reversal_score",
    "n_leads_present",
)


def monitored_features(
    signals: np.ndarray,
    masks: np.ndarray,
    n_valid: np.ndarray,
    fs: float,
    params: SignalFeatureParams,
) -> dict[str, np.ndarray]:
    """:data:`MONITORED_FEATURES` of a batch: each ``(b,)`` float64 (NaN where a feature is undefined).

    ``signals`` ``(b, 12, t)`` float32 mV at ``fs``, ``masks`` ``(b, 12)`` the present leads, ``n_valid``
    ``(b,)`` the samples before zero padding; ``params`` the validation policy's feature definitions, so
    the values are the ones validation computed on the training data.
    """
    features = batch_features(signals, fs, masks, n_valid, params)
    columns = {**record_columns(features.per_lead), **features.per_record}
    return {name: np.asarray(columns[name], dtype=np.float64) for name in MONITORED_FEATURES}
