"""Classification metrics with case weights — the bootstrap passes resampling counts as weights.

Every metric takes ``y`` (0/1, ``(n,)``), scores or decisions ``(n,)`` and optional weights ``(n,)`` or
``(rounds, n)``; with a weight matrix it returns one value per round, computed in one vectorised pass
(scores are sorted once, ties grouped). A value that is undefined (no positives, no negatives, no
predicted positives for PPV) is NaN.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import cast

import numpy as np

Array = np.ndarray


def _weights(n: int, w: Array | None) -> Array:
    return np.ones(n) if w is None else np.asarray(w, dtype=np.float64)


def _tie_groups(scores: Array, descending: bool) -> tuple[Array, Array]:
    """Sort order and the start of each run of equal scores."""
    order = np.argsort(-scores if descending else scores, kind="stable")
    ranked = scores[order]
    starts = np.concatenate([[0], np.flatnonzero(np.diff(ranked)) + 1])
    return order, starts


def _grouped(y: Array, w: Array, order: Array, starts: Array) -> tuple[Array, Array]:
    """Positive and negative weight per tie group, ``(..., groups)``."""
    yw = w[..., order] * y[order]
    nw = w[..., order] * (1 - y[order])
    return np.add.reduceat(yw, starts, axis=-1), np.add.reduceat(nw, starts, axis=-1)


def safe_divide(num: Array, den: Array) -> Array:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def _undefined(w: Array | None) -> Array:
    """NaN per round (a scalar NaN without weights): the value of a metric over no cases."""
    return np.full(_weights(0, w).shape[:-1], np.nan)


def _weights_per_score(y: Array, scores: Array, w: Array | None, descending: bool) -> tuple[Array, Array]:
    """Positive and negative weight per distinct score, scores in ascending or descending order."""
    y = np.asarray(y, dtype=np.float64)
    order, starts = _tie_groups(np.asarray(scores, dtype=np.float64), descending=descending)
    return _grouped(y, _weights(len(y), w), order, starts)


def auroc(y: Array, scores: Array, w: Array | None = None) -> Array:
    """Area under the ROC curve (Mann–Whitney, ties counted half)."""
    if len(y) == 0:
        return _undefined(w)
    pos, neg = _weights_per_score(y, scores, w, descending=False)
    neg_below = np.cumsum(neg, axis=-1) - neg
    numerator = (pos * (neg_below + 0.5 * neg)).sum(-1)
    return safe_divide(numerator, pos.sum(-1) * neg.sum(-1))


def average_precision(y: Array, scores: Array, w: Array | None = None) -> Array:
    """PR-AUC as average precision: Σ (recall step) × precision, thresholds at every distinct score."""
    if len(y) == 0:
        return _undefined(w)
    pos, neg = _weights_per_score(y, scores, w, descending=True)
    tp, fp = np.cumsum(pos, axis=-1), np.cumsum(neg, axis=-1)
    precision = safe_divide(tp, tp + fp)
    total = pos.sum(-1)
    with np.errstate(invalid="ignore"):
        summed = np.nansum(pos * np.nan_to_num(precision), axis=-1)
    return safe_divide(summed, total)


@dataclass
class Confusion:
    """Weighted confusion counts (scalars or per round)."""

    tp: Array
    fp: Array
    tn: Array
    fn: Array

    def rates(self) -> dict[str, Array]:
        """Sensitivity, specificity, PPV, NPV and F1 (NaN where undefined)."""
        return {
            "sensitivity": safe_divide(self.tp, self.tp + self.fn),
            "specificity": safe_divide(self.tn, self.tn + self.fp),
            "ppv": safe_divide(self.tp, self.tp + self.fp),
            "npv": safe_divide(self.tn, self.tn + self.fn),
            "f1": safe_divide(2 * self.tp, 2 * self.tp + self.fp + self.fn),
        }


def confusion(y: Array, decision: Array, w: Array | None = None) -> Confusion:
    """Counts of a 0/1 decision against 0/1 truth."""
    y = np.asarray(y, dtype=np.float64)
    d = np.asarray(decision, dtype=np.float64)
    w = _weights(len(y), w)
    return Confusion(w @ (y * d), w @ ((1 - y) * d), w @ ((1 - y) * (1 - d)), w @ (y * (1 - d)))


def expected_calibration_error(y: Array, proba: Array, w: Array | None = None, bins: int = 10) -> Array:
    """ECE over ``bins`` equal-width probability bins: Σ_b (share of cases) × |mean p − observed rate|."""
    if len(y) == 0:
        return _undefined(w)
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(proba, dtype=np.float64)
    w = _weights(len(y), w)
    onehot = np.eye(bins)[np.clip((p * bins).astype(int), 0, bins - 1)]  # (n, bins)
    count = w @ onehot
    gap = np.abs(w @ (onehot * p[:, None]) - w @ (onehot * y[:, None]))
    return safe_divide(gap.sum(-1), count.sum(-1))


def roc_curve(y: Array, scores: Array) -> tuple[Array, Array]:
    """``(false positive rate, true positive rate)`` from the highest threshold down, starting at (0, 0)."""
    pos, neg = _weights_per_score(y, scores, None, descending=True)
    tpr = np.concatenate([[0.0], np.cumsum(pos)]) / max(pos.sum(), 1e-12)
    fpr = np.concatenate([[0.0], np.cumsum(neg)]) / max(neg.sum(), 1e-12)
    return fpr, tpr


def pr_curve(y: Array, scores: Array) -> tuple[Array, Array]:
    """``(recall, precision)`` from the highest threshold down."""
    pos, neg = _weights_per_score(y, scores, None, descending=True)
    tp, fp = np.cumsum(pos), np.cumsum(neg)
    return tp / max(pos.sum(), 1e-12), tp / np.maximum(tp + fp, 1e-12)


def reliability(y: Array, proba: Array, bins: int = 10) -> tuple[Array, Array, Array]:
    """Per non-empty bin: mean predicted probability, observed positive rate, number of cases."""
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(proba, dtype=np.float64)
    index = np.clip((p * bins).astype(int), 0, bins - 1)
    count = np.bincount(index, minlength=bins).astype(float)
    mean_p = np.bincount(index, weights=p, minlength=bins)
    rate = np.bincount(index, weights=y, minlength=bins)
    filled = count > 0
    return mean_p[filled] / count[filled], rate[filled] / count[filled], count[filled]


def macro(values: Array) -> Array:
    """Mean over the last axis (labels), ignoring NaN; NaN where every label is NaN."""
    values = np.asarray(values, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return cast(Array, np.nanmean(values, axis=-1))


def macro_auroc(targets: Array, proba: Array) -> float:
    """Mean AUROC over the labels where both classes occur (NaN if none)."""
    return float(macro(np.array([auroc(targets[:, j], proba[:, j]) for j in range(targets.shape[1])])))
