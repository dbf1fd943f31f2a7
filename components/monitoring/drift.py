"""Drift of a window of production traffic against the reference (the production model's training data).

Three checks, each a two-sample test with a p-value:

- :func:`feature_drift`: Kolmogorov–Smirnov per signal-quality feature, over the whole window and per
  site and device, Bonferroni-corrected over the tests it runs;
- :func:`embedding_drift`: MMD² in the model's embedding space with a permutation p-value
  (:mod:`components.monitoring.mmd`);
- :func:`rate_drift`: Fisher's exact test of each label's predicted-positive count against the
  reference's, Bonferroni-corrected over the labels.

A difference is a breach when it is significant *and* larger than the policy's effect floor. Each check
alone tests at the policy's ``alpha``; :func:`assess` runs all three at an equal share of it, so that
``alpha`` bounds the chance that a window without drift raises an alarm.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.stats import fisher_exact, ks_2samp

from components.monitoring.errors import MonitoringError
from components.monitoring.mmd import mmd_test
from components.monitoring.policy import MonitoringPolicy

Status = Literal["ok", "breach", "insufficient"]
ALL = "all"


@dataclass(frozen=True)
class FeatureDrift:
    """One KS test of a feature in one group of the window (``all``, ``site=X``, ``device=Y``).

    ``reference`` names the reference rows compared: the same group when the reference has enough of
    it, else ``all``. A skipped test has NaN statistics and ``skipped_reason``."""

    feature: str
    group: str
    reference: str
    n_reference: int
    n_window: int
    statistic: float
    p_value: float
    p_adjusted: float
    breach: bool
    skipped_reason: str | None = None


@dataclass(frozen=True)
class EmbeddingDrift:
    """The MMD² test; ``n_reference`` and ``n_window`` are the embeddings compared (after subsampling)."""

    statistic: float
    p_value: float
    n_reference: int
    n_window: int
    bandwidth: float
    breach: bool


@dataclass(frozen=True)
class RateDrift:
    """One label's predicted-positive rate, reference against window."""

    label: str
    reference_rate: float
    window_rate: float
    n_reference: int
    n_window: int
    p_value: float
    p_adjusted: float
    breach: bool


@dataclass(frozen=True)
class _Group:
    name: str
    reference_name: str
    reference: pd.DataFrame
    window: pd.DataFrame


def _groups(reference: pd.DataFrame, window: pd.DataFrame, policy: MonitoringPolicy) -> list[_Group]:
    """The whole window, then each value of each ``group_by`` column the window has, in sorted order."""
    groups = [_Group(ALL, ALL, reference, window)]
    least = policy.features.min_group_samples
    for column in policy.features.group_by:
        if column not in window.columns:
            continue
        for value in sorted(window[column].dropna().astype(str).unique()):
            name = f"{column}={value}"
            rows = window[window[column].astype(str) == value]
            same = reference[reference[column].astype(str) == value] if column in reference else reference[:0]
            if len(same) >= least:
                groups.append(_Group(name, name, same, rows))
            else:
                groups.append(_Group(name, ALL, reference, rows))
    return groups


def _missing_columns(frame: pd.DataFrame, names: list[str], what: str) -> None:
    missing = [name for name in names if name not in frame.columns]
    if missing:
        raise MonitoringError(f"the {what} features lack the column(s) {missing} the policy compares")


def _ks(feature: str, group: _Group, least: int) -> FeatureDrift:
    ref = group.reference[feature].to_numpy(dtype=np.float64)
    win = group.window[feature].to_numpy(dtype=np.float64)
    ref, win = ref[~np.isnan(ref)], win[~np.isnan(win)]
    nan = math.nan
    where = (feature, group.name, group.reference_name)
    untested = FeatureDrift(*where, len(ref), len(win), nan, nan, nan, breach=False)
    if min(len(ref), len(win)) < least:
        reason = f"{len(win)} window and {len(ref)} reference values; the policy tests from {least}"
        return replace(untested, skipped_reason=reason)
    result = ks_2samp(ref, win)
    return replace(untested, statistic=float(result.statistic), p_value=float(result.pvalue))


def feature_drift(
    reference: pd.DataFrame, window: pd.DataFrame, policy: MonitoringPolicy, *, alpha: float | None = None
) -> list[FeatureDrift]:
    """KS tests of ``policy.features.names`` (NaN dropped) over the whole window and per group value of
    each ``group_by`` column the window has; groups with fewer than ``min_group_samples`` values on either
    side are skipped. Bonferroni over the tests run; a breach needs ``p_adjusted < alpha`` (the policy's
    by default) and ``D ≥ min_effect``."""
    names = policy.features.names
    _missing_columns(reference, names, "reference")
    _missing_columns(window, names, "window")
    least = policy.features.min_group_samples
    tests = [_ks(f, g, least) for g in _groups(reference, window, policy) for f in names]
    run = sum(t.skipped_reason is None for t in tests)
    level = policy.alpha if alpha is None else alpha
    out = []
    for t in tests:
        if t.skipped_reason is None:
            adjusted = min(1.0, t.p_value * run)
            breach = adjusted < level and t.statistic >= policy.features.min_effect
            t = replace(t, p_adjusted=adjusted, breach=breach)
        out.append(t)
    return out


def embedding_drift(
    reference: np.ndarray,
    window: np.ndarray,
    policy: MonitoringPolicy,
    seed: int,
    *,
    alpha: float | None = None,
) -> EmbeddingDrift:
    """MMD² between reference and window embeddings ``(n, d)``, each subsampled (seeded) to
    ``embedding.max_samples``; a breach needs ``p < alpha`` (the policy's by default) and
    ``MMD² ≥ embedding.min_effect``."""
    reference, window = np.asarray(reference, np.float64), np.asarray(window, np.float64)
    if reference.ndim != 2 or window.ndim != 2 or reference.shape[1] != window.shape[1]:
        raise MonitoringError(
            f"embeddings of shapes {reference.shape} and {window.shape} are not two samples of one space"
        )
    if min(len(reference), len(window)) < 2:
        raise MonitoringError(f"MMD needs two embeddings a side, got {len(reference)} and {len(window)}")
    rng = np.random.default_rng(seed)
    cap = policy.embedding.max_samples
    if len(reference) > cap:
        reference = reference[np.sort(rng.choice(len(reference), cap, replace=False))]
    if len(window) > cap:
        window = window[np.sort(rng.choice(len(window), cap, replace=False))]
    test = mmd_test(reference, window, policy.embedding.permutations, rng)
    level = policy.alpha if alpha is None else alpha
    breach = test.p_value < level and test.statistic >= policy.embedding.min_effect
    return EmbeddingDrift(test.statistic, test.p_value, len(reference), len(window), test.bandwidth, breach)


def rate_drift(
    reference_rates: np.ndarray,
    n_reference: int,
    window_decisions: np.ndarray,
    labels: list[str],
    policy: MonitoringPolicy,
    *,
    alpha: float | None = None,
) -> list[RateDrift]:
    """Per label, Fisher's exact test (two-sided) of the window's positive decisions ``(n, L)`` against
    the reference's ``round(rate × n_reference)`` positives of ``n_reference``: the reference rate is an
    estimate too. Bonferroni over the labels; a breach needs ``p_adjusted < alpha`` (the policy's by
    default) and ``|window rate − reference rate| > positive_rate.max_abs_change``."""
    rates = np.asarray(reference_rates, dtype=np.float64)
    decisions = np.asarray(window_decisions, dtype=bool).reshape(len(window_decisions), -1)
    if rates.shape != (len(labels),) or decisions.shape[1] != len(labels):
        raise MonitoringError(
            f"{len(labels)} labels, reference rates of shape {rates.shape} and window decisions of shape "
            f"{decisions.shape} do not match"
        )
    level = policy.alpha if alpha is None else alpha
    n = len(decisions)
    out = []
    for j, label in enumerate(labels):
        ref_pos, win_pos = round(rates[j] * n_reference), int(decisions[:, j].sum())
        table = [[win_pos, n - win_pos], [ref_pos, n_reference - ref_pos]]
        p = float(fisher_exact(table).pvalue)
        adjusted = min(1.0, p * len(labels))
        window_rate = win_pos / n if n else math.nan
        change = abs(window_rate - rates[j])
        breach = adjusted < level and change > policy.positive_rate.max_abs_change
        out.append(RateDrift(label, float(rates[j]), window_rate, n_reference, n, p, adjusted, breach))
    return out


@dataclass(frozen=True)
class DriftInputs:
    """What an assessment compares. Reference: the training data's feature frame (features, optional
    ``site``/``device``), embeddings ``(r, d)`` and the production model's positive rates per label over
    ``n_reference_decisions`` records. Window: one row per log entry in the feature frame, the
    embeddings ``(n, d)`` and the decisions ``(n, L)``."""

    reference_features: pd.DataFrame
    window_features: pd.DataFrame
    reference_embedding: np.ndarray
    window_embedding: np.ndarray
    reference_rates: np.ndarray
    n_reference_decisions: int
    window_decisions: np.ndarray
    labels: list[str]

    def __post_init__(self) -> None:
        sizes = {
            "features": len(self.window_features),
            "embeddings": len(self.window_embedding),
            "decisions": len(self.window_decisions),
        }
        if len(set(sizes.values())) > 1:
            raise MonitoringError(f"the window's parts differ in length: {sizes}")


@dataclass(frozen=True)
class DriftAssessment:
    """The outcome of one assessment: ``ok``, ``breach`` or ``insufficient`` (nothing decided), the
    tests run and one reason line per breach (or why nothing was decided)."""

    status: Status
    policy: str
    n_reference: int
    n_window: int
    features: list[FeatureDrift] = field(default_factory=list)
    embedding: EmbeddingDrift | None = None
    rates: list[RateDrift] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: NaN becomes None."""
        ready: dict[str, Any] = _json_ready(asdict(self))
        return ready


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _breach_reasons(
    features: list[FeatureDrift], embedding: EmbeddingDrift, rates: list[RateDrift], level: float
) -> list[str]:
    reasons = [
        f"feature {t.feature} ({t.group} vs reference {t.reference}): KS D = {t.statistic:.3f}, "
        f"p adjusted = {t.p_adjusted:.2g} < {level:.2g}"
        for t in features
        if t.breach
    ]
    if embedding.breach:
        reasons.append(
            f"embedding: MMD² = {embedding.statistic:.4g}, p = {embedding.p_value:.2g} < {level:.2g}"
        )
    reasons += [
        f"positive rate of {r.label}: {r.reference_rate:.3f} → {r.window_rate:.3f}, "
        f"p adjusted = {r.p_adjusted:.2g} < {level:.2g}"
        for r in rates
        if r.breach
    ]
    return reasons


def _insufficient(inputs: DriftInputs, policy: MonitoringPolicy) -> list[str]:
    need = policy.min_samples
    sides = {"window": len(inputs.window_features), "reference": len(inputs.reference_features)}
    return [
        f"the {side} has {n} samples; policy {policy.ref} needs at least {need}: nothing decided"
        for side, n in sides.items()
        if n < need
    ]


def assess(inputs: DriftInputs, policy: MonitoringPolicy, seed: int = 0) -> DriftAssessment:
    """Run the three checks, each at an equal share of ``policy.alpha``; ``insufficient`` (no test run)
    when the window or the reference has fewer than ``policy.min_samples`` samples."""
    n_ref, n_win = len(inputs.reference_features), len(inputs.window_features)
    if short := _insufficient(inputs, policy):
        return DriftAssessment("insufficient", policy.ref, n_ref, n_win, reasons=short)
    level = policy.check_alpha()
    features = feature_drift(inputs.reference_features, inputs.window_features, policy, alpha=level)
    embedding = embedding_drift(
        inputs.reference_embedding, inputs.window_embedding, policy, seed, alpha=level
    )
    rates = rate_drift(
        inputs.reference_rates,
        inputs.n_reference_decisions,
        inputs.window_decisions,
        inputs.labels,
        policy,
        alpha=level,
    )
    reasons = _breach_reasons(features, embedding, rates, level)
    status: Status = "breach" if reasons else "ok"
    if not reasons:
        tested = sum(t.skipped_reason is None for t in features)
        reasons = [
            f"no breach at alpha {policy.alpha:g}: {tested} feature tests ({len(features) - tested} "
            f"skipped), embedding p = {embedding.p_value:.2g}, {len(rates)} positive rates"
        ]
    return DriftAssessment(status, policy.ref, n_ref, n_win, features, embedding, rates, reasons)
