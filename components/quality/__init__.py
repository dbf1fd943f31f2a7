"""Signal-quality and metadata features of ECG records, vectorized over records."""

from components.quality.features import FeatureTables, SignalSource, extract_features
from components.quality.metadata import metadata_features
from components.quality.params import SignalFeatureParams
from components.quality.signal import (
    PER_LEAD_FEATURES,
    BatchFeatures,
    batch_features,
    padded_positions,
    rpeak_mask,
    rpeak_positions,
)

__all__ = [
    "PER_LEAD_FEATURES",
    "BatchFeatures",
    "FeatureTables",
    "SignalFeatureParams",
    "SignalSource",
    "batch_features",
    "extract_features",
    "metadata_features",
    "padded_positions",
    "rpeak_mask",
    "rpeak_positions",
]
