"""Parameters of the signal-quality feature definitions (the ``features:`` section of the policy)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class SignalFeatureParams(BaseModel):
    """How each signal feature is computed. No defaults: every value comes from the validation policy."""

    model_config = {"extra": "forbid"}

    flat_tolerance_mv: float = Field(description="|Δx| at or below this counts as 'no change'.")
    clip_tolerance_mv: float = Field(description="Distance from a lead's extreme that counts as 'at it'.")
    baseline_cutoff_hz: float = Field(description="Upper edge of the baseline-wander band.")
    powerline_hz: list[float] = Field(description="Mains frequencies; folded to the store rate.")
    powerline_halfwidth_hz: float = Field(description="Half width of each (aliased) mains band.")
    hf_low_hz: float = Field(description="Lower edge of the high-frequency (EMG) band.")
    qrs_band_hz: tuple[float, float] = Field(description="Band of the QRS energy envelope.")
    ecg_band_hz: tuple[float, float] = Field(description="Band of the signal used for lead correlations.")
    envelope_window_s: float = Field(description="Moving-average window of the QRS envelope.")
    refractory_s: float = Field(description="Minimum distance between R peaks.")
    peak_threshold: float = Field(description="R-peak threshold, fraction of the envelope's 98th percentile.")
    batch_records: int = Field(description="Records per vectorized batch.")
    fft_workers: int = Field(description="Threads for scipy.fft.")
