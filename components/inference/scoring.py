"""Whole canonical records → a task model's aggregated probabilities, pooled features and signal quality.

What batch inference, the monitoring reference and shadow replays share: each record is cut into windows
of the model's length, the windows go through one batched forward, and per record the probabilities are
aggregated (``windows.aggregate``) and the pooled features averaged. The signal-quality features the
prediction log keeps are measured on each record's first window, as the reference records are stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from components.io.canonical import split_windows
from components.models.task_model import TaskModel
from components.quality.monitored import MONITORED_FEATURES, monitored_features
from components.tasks.windows import WindowParams, aggregate
from components.validation.policy import feature_params


@dataclass(frozen=True)
class Scores:
    """One chunk of records as the model saw it."""

    proba: np.ndarray  # (n, labels) aggregated over each record's windows
    features: np.ndarray  # (n, width) pooled features, averaged over windows
    n_windows: np.ndarray  # (n,)
    quality: dict[str, np.ndarray]  # feature -> (n,), measured on the first window

    def __len__(self) -> int:
        return len(self.n_windows)


def score_records(
    model: TaskModel,
    signals: Sequence[np.ndarray],
    masks: np.ndarray,
    n_valid: np.ndarray,
    *,
    windows: WindowParams,
    batch_size: int = 256,
) -> Scores:
    """Score whole ``(12, t)`` canonical records at the model's rate (``n_valid`` real samples each)."""
    length = model.cfg.n_samples
    cut = [split_windows(signal, int(valid), length) for signal, valid in zip(signals, n_valid, strict=True)]
    counts = np.array([len(c) for c in cut], dtype=np.int64)
    if not cut:
        labels, width = len(model.cfg.labels), model.head.in_features
        quality = {name: np.zeros(0) for name in MONITORED_FEATURES}
        return Scores(np.zeros((0, labels)), np.zeros((0, width)), counts, quality)
    stacked = np.concatenate(cut)
    proba, features = model.predict_with_features(stacked, np.repeat(masks, counts, axis=0), batch_size)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    quality = monitored_features(
        stacked[first],
        np.asarray(masks, bool),
        np.minimum(n_valid, length),
        float(model.cfg.fs),
        feature_params(),
    )
    return Scores(
        proba=aggregate(proba, counts, windows.aggregate),
        features=aggregate(features, counts, "mean"),
        n_windows=counts,
        quality=quality,
    )

