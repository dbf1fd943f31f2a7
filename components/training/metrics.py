"""AUROC, retrieval recall and percentile-bootstrap confidence intervals (NumPy/SciPy only)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.stats import rankdata


def auroc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (Mann–Whitney, ties counted half); NaN when one class is absent."""
    y = np.asarray(y).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def macro_auroc(targets: np.ndarray, scores: np.ndarray) -> float:
    """Mean AUROC over the columns where both classes occur."""
    values = [auroc(targets[:, j], scores[:, j]) for j in range(targets.shape[1])]
    return float(np.nanmean(values)) if not np.all(np.isnan(values)) else float("nan")


def retrieval_hits(similarity: np.ndarray, truth: np.ndarray, k: int) -> np.ndarray:
    """Per query (row of ``similarity``): is the true candidate among the ``k`` most similar?"""
    top = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    return (top == truth[:, None]).any(axis=1)


def bootstrap_ci(
    statistic: Callable[[np.ndarray], float],
    n: int,
    *,
    rounds: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> tuple[float, float]:
    """Percentile bootstrap CI of ``statistic(indices)`` over ``n`` cases resampled with replacement."""
    rng = np.random.default_rng(seed)
    values = np.array([statistic(rng.integers(0, n, n)) for _ in range(rounds)])
    values = values[~np.isnan(values)]
    return float(np.quantile(values, alpha / 2)), float(np.quantile(values, 1 - alpha / 2))
