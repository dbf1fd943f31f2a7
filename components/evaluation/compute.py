"""An evaluation: metrics with patient-level bootstrap CIs, subgroups, a paired comparison, as plain data.

:class:`EvaluationReport` is what the gate decides on, what the HTML report and the model card show, and
what ``evaluation.json`` holds (so ``ecgops gate`` can decide again without recomputing).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from components.evaluation.cohorts import UNKNOWN, group_order
from components.metrics.bootstrap import Estimate, estimate, patient_weights
from components.metrics.classification import (
    auroc,
    average_precision,
    confusion,
    expected_calibration_error,
    macro,
)

#: per-label metrics, in the order reports show them
METRICS = ("auroc", "pr_auc", "sensitivity", "specificity", "ppv", "npv", "f1", "ece")


@dataclass
class BootstrapSettings:
    rounds: int = 200
    level: float = 0.95
    seed: int = 0
    calibration_bins: int = 10


@dataclass
class Predictions:
    """One evaluated cohort: truth, model output and subgroup attributes per record."""

    record_ids: np.ndarray
    patients: np.ndarray
    targets: np.ndarray  # (n, k) 0/1
    proba: np.ndarray  # (n, k)
    attributes: pd.DataFrame  # sex, age, site, device

    def __len__(self) -> int:
        return len(self.record_ids)

    @property
    def n_patients(self) -> int:
        return len(set(np.asarray(self.patients).astype(str)))


@dataclass
class SubgroupResult:
    attribute: str
    group: str
    n_records: int
    n_patients: int
    positives: dict[str, int]
    macro_auroc: Estimate
    auroc: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "attribute": self.attribute,
            "group": self.group,
            "n_records": self.n_records,
            "n_patients": self.n_patients,
            "positives": self.positives,
            "macro_auroc": self.macro_auroc.to_dict(),
            "auroc": {k: (v if math.isfinite(v) else None) for k, v in self.auroc.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SubgroupResult:
        return cls(
            d["attribute"],
            d["group"],
            d["n_records"],
            d["n_patients"],
            d["positives"],
            Estimate.from_dict(d["macro_auroc"]),
            {k: float("nan") if v is None else float(v) for k, v in d["auroc"].items()},
        )


@dataclass
class CohortReport:
    """Metrics of one cohort (the test split, or an external dataset)."""

    name: str  # "test" or the external dataset
    split: str  # registry split label: "test", "external:<dataset>" (+ "@run-N" for a re-evaluation)
    dataset: str
    n_records: int
    n_patients: int
    positives: dict[str, int]
    macro: dict[str, Estimate]
    per_label: dict[str, dict[str, Estimate]]
    subgroups: list[SubgroupResult] = field(default_factory=list)
    excluded: dict[str, int] = field(default_factory=dict)
    n_mapped: int = 0  # records whose labels came through the label-system mapping

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "split": self.split,
            "dataset": self.dataset,
            "n_records": self.n_records,
            "n_patients": self.n_patients,
            "positives": self.positives,
            "macro": {k: v.to_dict() for k, v in self.macro.items()},
            "per_label": {lab: {k: v.to_dict() for k, v in m.items()} for lab, m in self.per_label.items()},
            "subgroups": [s.to_dict() for s in self.subgroups],
            "excluded": self.excluded,
            "n_mapped": self.n_mapped,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CohortReport:
        return cls(
            d["name"],
            d["split"],
            d["dataset"],
            d["n_records"],
            d["n_patients"],
            d["positives"],
            {k: Estimate.from_dict(v) for k, v in d["macro"].items()},
            {lab: {k: Estimate.from_dict(v) for k, v in m.items()} for lab, m in d["per_label"].items()},
            [SubgroupResult.from_dict(s) for s in d["subgroups"]],
            d.get("excluded", {}),
            d.get("n_mapped", 0),
        )


@dataclass
class Comparison:
    """Candidate vs the production model on the same records (paired bootstrap)."""

    production: str
    n_records: int
    candidate_macro_auroc: Estimate
    production_macro_auroc: Estimate
    difference: Estimate  # candidate − production, macro AUROC
    per_label_difference: dict[str, Estimate]

    def to_dict(self) -> dict[str, Any]:
        return {
            "production": self.production,
            "n_records": self.n_records,
            "candidate_macro_auroc": self.candidate_macro_auroc.to_dict(),
            "production_macro_auroc": self.production_macro_auroc.to_dict(),
            "difference": self.difference.to_dict(),
            "per_label_difference": {k: v.to_dict() for k, v in self.per_label_difference.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Comparison:
        return cls(
            d["production"],
            d["n_records"],
            Estimate.from_dict(d["candidate_macro_auroc"]),
            Estimate.from_dict(d["production_macro_auroc"]),
            Estimate.from_dict(d["difference"]),
            {k: Estimate.from_dict(v) for k, v in d["per_label_difference"].items()},
        )


@dataclass
class EvaluationReport:
    """Everything one evaluation of a task model found."""

    model: str
    task: str
    labels: list[str]
    thresholds: list[float]
    test: CohortReport
    external: list[CohortReport] = field(default_factory=list)
    comparison: Comparison | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    comparison_note: str = ""  # why there is no comparison although a production model exists

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "task": self.task,
            "labels": self.labels,
            "thresholds": self.thresholds,
            "test": self.test.to_dict(),
            "external": [c.to_dict() for c in self.external],
            "comparison": self.comparison.to_dict() if self.comparison else None,
            "settings": self.settings,
            "created_at": self.created_at,
            "comparison_note": self.comparison_note,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EvaluationReport:
        return cls(
            d["model"],
            d["task"],
            d["labels"],
            d["thresholds"],
            CohortReport.from_dict(d["test"]),
            [CohortReport.from_dict(c) for c in d["external"]],
            Comparison.from_dict(d["comparison"]) if d.get("comparison") else None,
            d.get("settings", {}),
            d.get("created_at", ""),
            d.get("comparison_note", ""),
        )


def _label_samples(
    y: np.ndarray, p: np.ndarray, threshold: float, w: np.ndarray | None, bins: int
) -> dict[str, np.ndarray]:
    """Every per-label metric, as a point (``w`` None) or one value per bootstrap round."""
    decision = p >= threshold
    out = {
        "auroc": auroc(y, p, w),
        "pr_auc": average_precision(y, p, w),
        "ece": expected_calibration_error(y, p, w, bins),
    }
    out |= confusion(y, decision, w).rates()
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}


def label_metrics(
    targets: np.ndarray,
    proba: np.ndarray,
    thresholds: list[float],
    labels: list[str],
    weights: np.ndarray,
    settings: BootstrapSettings,
) -> tuple[dict[str, dict[str, Estimate]], dict[str, Estimate]]:
    """Per-label and macro-averaged :data:`METRICS` with bootstrap CIs (``weights``: rounds × records)."""
    k = len(labels)
    points = {m: np.full(k, np.nan) for m in METRICS}
    samples = {m: np.full((len(weights), k), np.nan) for m in METRICS}
    per_label: dict[str, dict[str, Estimate]] = {}
    for j, label in enumerate(labels):
        y, p = targets[:, j], proba[:, j]
        point = _label_samples(y, p, thresholds[j], None, settings.calibration_bins)
        rounds = _label_samples(y, p, thresholds[j], weights, settings.calibration_bins)
        per_label[label] = {}
        for m in METRICS:
            points[m][j] = float(point[m])
            samples[m][:, j] = rounds[m]
            per_label[label][m] = estimate(float(point[m]), rounds[m], settings.level)
        per_label[label]["prevalence"] = Estimate(float(np.mean(y)) if len(y) else float("nan"))
    macro_estimates = {
        m: estimate(float(macro(points[m])), macro(samples[m]), settings.level) for m in METRICS
    }
    return per_label, macro_estimates


def subgroup_results(
    pred: Predictions,
    labels: list[str],
    weights: np.ndarray,
    settings: BootstrapSettings,
    attributes: list[str],
) -> list[SubgroupResult]:
    """Macro AUROC (with CI) and per-label AUROC in every group of every attribute (unknown skipped)."""
    out = []
    for attribute in attributes:
        values = pred.attributes[attribute].to_numpy()
        for group in sorted({str(v) for v in values} - {UNKNOWN}, key=lambda g: group_order(attribute, g)):
            mask = values == group
            t, p, w = pred.targets[mask], pred.proba[mask], weights[:, mask]
            per = np.array([auroc(t[:, j], p[:, j]) for j in range(len(labels))], dtype=np.float64)
            rounds = np.stack([auroc(t[:, j], p[:, j], w) for j in range(len(labels))], axis=1)
            out.append(
                SubgroupResult(
                    attribute=attribute,
                    group=group,
                    n_records=int(mask.sum()),
                    n_patients=len(set(np.asarray(pred.patients)[mask].astype(str))),
                    positives={lab: int(t[:, j].sum()) for j, lab in enumerate(labels)},
                    macro_auroc=estimate(float(macro(per)), macro(rounds), settings.level),
                    auroc={lab: float(per[j]) for j, lab in enumerate(labels)},
                )
            )
    return out


def evaluate_cohort(
    pred: Predictions,
    *,
    name: str,
    split: str,
    dataset: str,
    labels: list[str],
    thresholds: list[float],
    settings: BootstrapSettings,
    subgroups: list[str],
    excluded: dict[str, int] | None = None,
    n_mapped: int = 0,
) -> CohortReport:
    """All metrics of one cohort, bootstrapped over its patients."""
    weights = patient_weights(pred.patients, settings.rounds, settings.seed)
    per_label, macro_estimates = label_metrics(
        pred.targets, pred.proba, thresholds, labels, weights, settings
    )
    return CohortReport(
        name=name,
        split=split,
        dataset=dataset,
        n_records=len(pred),
        n_patients=pred.n_patients,
        positives={lab: int(pred.targets[:, j].sum()) for j, lab in enumerate(labels)},
        macro=macro_estimates,
        per_label=per_label,
        subgroups=subgroup_results(pred, labels, weights, settings, subgroups),
        excluded=dict(excluded or {}),
        n_mapped=n_mapped,
    )


def compare(
    pred: Predictions,
    production_proba: np.ndarray,
    *,
    production: str,
    labels: list[str],
    settings: BootstrapSettings,
) -> Comparison:
    """Paired bootstrap of candidate − production AUROC: both models scored on the same resamples."""
    weights = patient_weights(pred.patients, settings.rounds, settings.seed)
    k = len(labels)
    cand_point, prod_point = np.full(k, np.nan), np.full(k, np.nan)
    cand_rounds, prod_rounds = np.full((len(weights), k), np.nan), np.full((len(weights), k), np.nan)
    per_label: dict[str, Estimate] = {}
    for j, label in enumerate(labels):
        y = pred.targets[:, j]
        cand_point[j], prod_point[j] = auroc(y, pred.proba[:, j]), auroc(y, production_proba[:, j])
        cand_rounds[:, j] = auroc(y, pred.proba[:, j], weights)
        prod_rounds[:, j] = auroc(y, production_proba[:, j], weights)
        per_label[label] = estimate(
            float(cand_point[j] - prod_point[j]), cand_rounds[:, j] - prod_rounds[:, j], settings.level
        )
    both = np.isfinite(cand_point) & np.isfinite(prod_point)
    cand_macro, prod_macro = macro(cand_rounds[:, both]), macro(prod_rounds[:, both])
    return Comparison(
        production=production,
        n_records=len(pred),
        candidate_macro_auroc=estimate(float(macro(cand_point[both])), cand_macro, settings.level),
        production_macro_auroc=estimate(float(macro(prod_point[both])), prod_macro, settings.level),
        difference=estimate(
            float(macro(cand_point[both]) - macro(prod_point[both])), cand_macro - prod_macro, settings.level
        ),
        per_label_difference=per_label,
    )
