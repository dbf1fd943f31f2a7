"""Decision thresholds per label, tuned on the validation split and stored with the model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from components.metrics.classification import safe_divide

DEFAULT_THRESHOLD = 0.5


@dataclass
class ThresholdChoice:
    label: str
    threshold: float
    rule: str
    value: float  # the criterion at the chosen threshold (F1, Youden's J or sensitivity); NaN when defaulted
    note: str = ""


def _candidates(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per distinct score t (deciding ``p >= t``), descending: threshold, true and false positives."""
    order = np.argsort(-p, kind="stable")
    ranked, truth = p[order], y[order]
    last_of_run = np.r_[np.flatnonzero(np.diff(ranked)), len(ranked) - 1]
    tp = np.cumsum(truth)[last_of_run]
    fp = np.cumsum(1 - truth)[last_of_run]
    return ranked[last_of_run], tp.astype(float), fp.astype(float), np.array([truth.sum(), len(truth)])


def tune_threshold(
    y: np.ndarray, proba: np.ndarray, *, rule: str, label: str, target_sensitivity: float = 0.9
) -> ThresholdChoice:
    """The threshold maximising F1 or Youden's J, or the highest one reaching ``target_sensitivity``.

    Thresholds are midpoints between neighbouring distinct validation scores, so a new case scoring
    like a validation case is decided as that case was. Without both classes the threshold is 0.5.
    """
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(proba, dtype=np.float64)
    n_pos = int(y.sum())
    if n_pos == 0 or n_pos == len(y):
        which = "no positive" if n_pos == 0 else "no negative"
        return ThresholdChoice(label, DEFAULT_THRESHOLD, rule, float("nan"), f"{which} validation cases")
    thresholds, tp, fp, (pos, n) = _candidates(y, p)
    neg = n - pos
    if rule == "f1":
        score = safe_divide(2 * tp, tp + fp + pos)
    elif rule == "youden":
        score = tp / pos - fp / neg
    elif rule == "sensitivity":
        reaching = tp / pos >= target_sensitivity
        score = np.where(reaching, thresholds, -np.inf)  # the highest threshold that still reaches it
    else:
        raise ValueError(f"unknown threshold rule {rule!r}")
    best = int(np.nanargmax(score))
    below = thresholds[best + 1] if best + 1 < len(thresholds) else max(0.0, thresholds[best] - 1e-3)
    threshold = float((thresholds[best] + below) / 2)
    value = float(tp[best] / pos) if rule == "sensitivity" else float(score[best])
    return ThresholdChoice(label, threshold, rule, value)


def tune_thresholds(
    targets: np.ndarray, proba: np.ndarray, labels: list[str], *, rule: str, target_sensitivity: float = 0.9
) -> list[ThresholdChoice]:
    return [
        tune_threshold(
            targets[:, j], proba[:, j], rule=rule, label=name, target_sensitivity=target_sensitivity
        )
        for j, name in enumerate(labels)
    ]
