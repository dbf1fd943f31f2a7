"""Evaluation figures (PNG): ROC and PR curves, reliability diagram, confusion matrices, forest plots."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from components.evaluation.compute import CohortReport, Comparison, Predictions, SubgroupResult
from components.metrics.bootstrap import Estimate
from components.metrics.classification import pr_curve, reliability, roc_curve

DPI = 100


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, format="png")
    plt.close(fig)
    return path


def _colors(n: int) -> list:
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(n)]


def roc_plot(pred: Predictions, report: CohortReport, labels: list[str], path: Path, title: str) -> Path:
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for j, (label, color) in enumerate(zip(labels, _colors(len(labels)), strict=True)):
        est = report.per_label[label]["auroc"]
        if not est.defined:
            continue
        fpr, tpr = roc_curve(pred.targets[:, j], pred.proba[:, j])
        ax.plot(fpr, tpr, color=color, lw=1.5, label=f"{label}  {est.text()}")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    ax.set(xlabel="1 − specificity", ylabel="sensitivity", xlim=(0, 1), ylim=(0, 1.01), title=title)
    ax.legend(loc="lower right", fontsize=8, title="AUROC (95 % CI)", title_fontsize=8)
    return _save(fig, path)


def pr_plot(pred: Predictions, report: CohortReport, labels: list[str], path: Path, title: str) -> Path:
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for j, (label, color) in enumerate(zip(labels, _colors(len(labels)), strict=True)):
        est = report.per_label[label]["pr_auc"]
        if not est.defined:
            continue
        recall, precision = pr_curve(pred.targets[:, j], pred.proba[:, j])
        ax.step(recall, precision, where="post", color=color, lw=1.5, label=f"{label}  {est.text()}")
        prevalence = report.per_label[label]["prevalence"].value
        ax.axhline(prevalence, color=color, lw=0.6, ls=":")
    ax.set(xlabel="recall (sensitivity)", ylabel="precision (PPV)", xlim=(0, 1), ylim=(0, 1.01), title=title)
    ax.legend(loc="upper right", fontsize=8, title="PR-AUC (95 % CI); dotted: prevalence", title_fontsize=8)
    return _save(fig, path)


def calibration_plot(
    pred: Predictions, report: CohortReport, labels: list[str], bins: int, path: Path
) -> Path:
    fig, (ax, hist) = plt.subplots(
        2, 1, figsize=(5.5, 6.5), gridspec_kw={"height_ratios": [3, 1]}, sharex=True
    )
    for j, (label, color) in enumerate(zip(labels, _colors(len(labels)), strict=True)):
        mean_p, rate, _ = reliability(pred.targets[:, j], pred.proba[:, j], bins)
        ece = report.per_label[label]["ece"]
        ax.plot(mean_p, rate, marker="o", ms=3, color=color, lw=1.2, label=f"{label}  ECE {ece.text()}")
        hist.hist(pred.proba[:, j], bins=bins, range=(0, 1), histtype="step", color=color)
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    ax.set(ylabel="observed positive rate", ylim=(0, 1.01), title=f"Reliability ({bins} bins)")
    ax.legend(loc="upper left", fontsize=8)
    hist.set(xlabel="predicted probability", ylabel="records", xlim=(0, 1))
    return _save(fig, path)


def confusion_plot(pred: Predictions, labels: list[str], thresholds: list[float], path: Path) -> Path:
    n = len(labels)
    cols = min(n, 4)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.6 * rows), squeeze=False)
    for j, label in enumerate(labels):
        ax = axes[j // cols][j % cols]
        y = pred.targets[:, j].astype(bool)
        d = pred.proba[:, j] >= thresholds[j]
        matrix = np.array([[np.sum(~y & ~d), np.sum(~y & d)], [np.sum(y & ~d), np.sum(y & d)]])
        ax.imshow(matrix, cmap="Blues")
        for (r, c), value in np.ndenumerate(matrix):
            ax.text(c, r, str(value), ha="center", va="center", color="black", fontsize=11)
        ax.set_xticks([0, 1], ["pred −", "pred +"])
        ax.set_yticks([0, 1], ["true −", "true +"])
        ax.set_title(f"{label} @ {thresholds[j]:.2f}", fontsize=9)
    for k in range(n, rows * cols):
        axes[k // cols][k % cols].axis("off")
    return _save(fig, path)


def _forest(
    ax: plt.Axes, names: list[str], estimates: list[Estimate], reference: float | None = None
) -> None:
    y = np.arange(len(names))[::-1]
    for yi, est in zip(y, estimates, strict=True):
        if not est.defined:
            continue
        ax.plot([est.value], [yi], "o", color="black", ms=4)
        if est.ci_low is not None and est.ci_high is not None:
            ax.plot([est.ci_low, est.ci_high], [yi, yi], color="black", lw=1.2)
    if reference is not None:
        ax.axvline(reference, color="grey", lw=0.8, ls="--")
    ax.set_yticks(y, names, fontsize=8)


def subgroup_plot(subgroups: list[SubgroupResult], overall: Estimate, path: Path) -> Path:
    names = [f"{s.attribute}={s.group} (n={s.n_records})" for s in subgroups]
    fig, ax = plt.subplots(figsize=(6, max(2.0, 0.3 * len(names) + 1.2)))
    _forest(ax, names, [s.macro_auroc for s in subgroups], overall.value if overall.defined else None)
    ax.set(xlabel="macro AUROC (95 % CI); dashed: all test records", title="Subgroups")
    return _save(fig, path)


def comparison_plot(comparison: Comparison, labels: list[str], path: Path) -> Path:
    names = ["macro", *labels]
    estimates = [comparison.difference, *(comparison.per_label_difference[lab] for lab in labels)]
    fig, ax = plt.subplots(figsize=(6, 0.35 * len(names) + 1.4))
    _forest(ax, names, estimates, 0.0)
    ax.set(
        xlabel=f"AUROC difference vs {comparison.production} (paired, 95 % CI)",
        title="Candidate − production",
    )
    return _save(fig, path)
