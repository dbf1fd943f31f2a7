"""Bootstrap confidence intervals: patient-level (all of a patient's records go together, as case weights)
and case-level (a statistic of resampled indices); percentile intervals.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its bootstrap confidence interval (None where it could not be estimated)."""

    value: float
    ci_low: float | None = None
    ci_high: float | None = None

    @property
    def defined(self) -> bool:
        return math.isfinite(self.value)

    def bound(self, which: str) -> float:
        """``point`` → the value; ``ci_low`` → the lower CI bound (NaN when there is none)."""
        if which == "point":
            return self.value
        return self.ci_low if self.ci_low is not None else float("nan")

    def to_dict(self) -> dict[str, float | None]:
        return {"value": _clean(self.value), "ci_low": _clean(self.ci_low), "ci_high": _clean(self.ci_high)}

    @classmethod
    def from_dict(cls, data: dict[str, float | None]) -> Estimate:
        value = data.get("value")
        return cls(float("nan") if value is None else float(value), data.get("ci_low"), data.get("ci_high"))

    def text(self, digits: int = 3) -> str:
        """``0.874 (0.842–0.903)``, ``n/a`` when undefined."""
        if not self.defined:
            return "n/a"
        if self.ci_low is None or self.ci_high is None:
            return f"{self.value:.{digits}f}"
        return f"{self.value:.{digits}f} ({self.ci_low:.{digits}f}–{self.ci_high:.{digits}f})"


def _clean(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def patient_weights(patients: np.ndarray, rounds: int, seed: int) -> np.ndarray:
    """``(rounds, n records)`` case weights: per round, patients drawn with replacement, each record
    weighted by how often its patient was drawn."""
    _, index = np.unique(np.asarray(patients).astype(str), return_inverse=True)
    n_patients = int(index.max()) + 1 if len(index) else 0
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, max(n_patients, 1), size=(rounds, n_patients))
    offsets = (np.arange(rounds) * n_patients)[:, None]
    counts = np.bincount((draws + offsets).ravel(), minlength=rounds * n_patients).reshape(rounds, n_patients)
    return counts[:, index].astype(np.float64)


def estimate(point: float, samples: np.ndarray, level: float = 0.95, min_valid: float = 0.5) -> Estimate:
    """Percentile interval of the bootstrap ``samples`` around ``point``; none when fewer than
    ``min_valid`` of the rounds gave a defined value (e.g. a rare class absent from most resamples)."""
    samples = np.asarray(samples, dtype=np.float64)
    valid = samples[np.isfinite(samples)]
    if not math.isfinite(point) or len(valid) < max(1, min_valid * len(samples)):
        return Estimate(float(point))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.quantile(valid, [(1 - level) / 2, 1 - (1 - level) / 2])
    return Estimate(float(point), float(low), float(high))


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
