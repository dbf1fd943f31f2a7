"""Monitoring figures (PNG): feature ECDFs, per-group p-values, the embeddings' PCA, positive rates."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from components.monitoring.drift import FeatureDrift, RateDrift

DPI = 100
REFERENCE_COLOR, WINDOW_COLOR, BREACH_COLOR = "#1f77b4", "#ff7f0e", "#c62828"
#: points of each side drawn in the PCA scatter
SCATTER_POINTS = 1000


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, format="png")
    plt.close(fig)
    return path


def _ecdf(ax: Axes, values: np.ndarray, color: str, label: str) -> None:
    values = np.sort(values[~np.isnan(values)])
    if values.size:
        ax.step(values, np.arange(1, values.size + 1) / values.size, where="post", color=color, label=label)


def feature_ecdfs(
    tests: list[FeatureDrift], reference: pd.DataFrame, window: pd.DataFrame, path: Path
) -> Path:
    """One panel per feature: reference and window ECDFs (whole window), KS D and adjusted p in the title."""
    overall = [t for t in tests if t.group == "all"]
    cols = min(3, len(overall))
    rows = math.ceil(len(overall) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    for ax, test in zip(axes.flat, overall, strict=False):
        _ecdf(ax, reference[test.feature].to_numpy(np.float64), REFERENCE_COLOR, "reference")
        _ecdf(ax, window[test.feature].to_numpy(np.float64), WINDOW_COLOR, "window")
        found = f"D = {test.statistic:.2f}, p adj = {test.p_adjusted:.2g}"
        found = "skipped" if test.skipped_reason else found
        ax.set_title(f"{test.feature}\n{found}", fontsize=9, color=BREACH_COLOR if test.breach else "black")
        ax.set_ylim(0, 1.02)
        ax.tick_params(labelsize=8)
    for ax in list(axes.flat)[len(overall) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def group_pvalues(tests: list[FeatureDrift], path: Path) -> Path:
    """Heat map of −log10 adjusted p per feature (rows) and tested group (columns), breaches boxed; groups
    too small to test are left out and counted in the title."""
    features = list(dict.fromkeys(t.feature for t in tests))
    groups = list(dict.fromkeys(t.group for t in tests if t.skipped_reason is None))
    untested = len({t.group for t in tests} - set(groups))
    score = np.full((len(features), len(groups)), np.nan)
    fig, ax = plt.subplots(figsize=(2.8 + 0.8 * len(groups), 1.2 + 0.35 * len(features)))
    for t in tests:
        if t.skipped_reason is not None:
            continue
        i, j = features.index(t.feature), groups.index(t.group)
        score[i, j] = min(-math.log10(max(t.p_adjusted, 1e-300)), 10.0)
        color = "white" if score[i, j] > 6 else "black"
        ax.text(j, i, f"{t.p_adjusted:.1g}", ha="center", va="center", fontsize=7, color=color)
        if t.breach:
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec=BREACH_COLOR, lw=2))
    image = ax.imshow(np.ma.masked_invalid(score), cmap="Oranges", vmin=0, vmax=10, aspect="auto")
    fig.colorbar(image, ax=ax, label="−log10 adjusted p (10: ≤ 1e-10)")
    ax.set_xticks(range(len(groups)), groups, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(features)), features, fontsize=8)
    ax.set_title(f"Feature drift per group (boxed: breach; {untested} groups too small to test)", fontsize=9)
    return _save(fig, path)


def _subsample(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return x[rng.choice(len(x), SCATTER_POINTS, replace=False)] if len(x) > SCATTER_POINTS else x


def embedding_pca(reference: np.ndarray, window: np.ndarray, title: str, path: Path) -> Path:
    """Reference and window embeddings on the pooled sample's first two principal components."""
    rng = np.random.default_rng(0)
    ref = _subsample(np.asarray(reference, np.float64), rng)
    win = _subsample(np.asarray(window, np.float64), rng)
    pooled = np.concatenate([ref, win])
    centre = pooled.mean(axis=0)
    _, singular, axes = np.linalg.svd(pooled - centre, full_matrices=False)
    axes = np.concatenate([axes[:2], np.zeros((max(0, 2 - len(axes)), pooled.shape[1]))])
    share = np.concatenate([singular[:2] ** 2, np.zeros(2)])[:2] / max(float((singular**2).sum()), 1e-300)
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for points, color, label in ((ref, REFERENCE_COLOR, "reference"), (win, WINDOW_COLOR, "window")):
        projected = (points - centre) @ axes.T
        ax.scatter(projected[:, 0], projected[:, 1], s=6, alpha=0.5, color=color, label=label)
    ax.set(xlabel=f"PC1 ({share[0]:.0%})", ylabel=f"PC2 ({share[1]:.0%})", title=title)
    ax.legend(fontsize=8)
    return _save(fig, path)


def positive_rates(rates: list[RateDrift], path: Path) -> Path:
    """Predicted-positive rate per label, reference against window, with the adjusted p-value."""
    x = np.arange(len(rates))
    fig, ax = plt.subplots(figsize=(max(4.0, 1.0 + 0.9 * len(rates)), 4))
    ax.bar(x - 0.2, [r.reference_rate for r in rates], 0.4, color=REFERENCE_COLOR, label="reference")
    ax.bar(x + 0.2, [r.window_rate for r in rates], 0.4, color=WINDOW_COLOR, label="window")
    for i, r in enumerate(rates):
        top = max(r.reference_rate, r.window_rate)
        color = BREACH_COLOR if r.breach else "black"
        ax.text(i, top + 0.02, f"p adj {r.p_adjusted:.2g}", ha="center", fontsize=7, color=color)
    ax.set_xticks(x, [r.label for r in rates], rotation=45, ha="right", fontsize=8)
    ax.set(ylabel="predicted-positive rate", ylim=(0, 1.1), title="Positive rates per label")
    ax.legend(fontsize=8)
    return _save(fig, path)
