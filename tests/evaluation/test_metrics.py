"""Weighted metrics against independent definitions, and the patient-level bootstrap."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import rankdata

from components.io.store import DatasetStore
from components.metrics.bootstrap import estimate, patient_weights
from components.metrics.classification import (
    auroc,
    average_precision,
    confusion,
    expected_calibration_error,
    pr_curve,
    roc_curve,
)
from components.training.reports import superdiagnostic_targets


@pytest.fixture(scope="module")
def scored() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, scores with ties, and integer case weights."""
    rng = np.random.default_rng(11)
    y = (rng.random(400) < 0.25).astype(int)
    s = np.round(np.clip(0.35 + 0.3 * y + rng.normal(0, 0.2, 400), 0, 1), 2)
    w = rng.integers(0, 4, 400)
    return y, s, w


def rank_auroc(y: np.ndarray, score: np.ndarray) -> float:
    """Oracle: AUROC as the Mann–Whitney statistic from mid-ranks (ties counted half); NaN for one class."""
    y = np.asarray(y).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _brute_ap(y: np.ndarray, s: np.ndarray) -> float:
    """Average precision from its definition: mean over positives of the precision at their score."""
    precisions = [((s >= t) & (y == 1)).sum() / (s >= t).sum() for t in s[y == 1]]
    return float(np.mean(precisions))


def test_auroc_matches_the_rank_statistic_and_weights_equal_replication(scored: tuple) -> None:
    y, s, w = scored
    assert float(auroc(y, s)) == pytest.approx(rank_auroc(y, s), abs=1e-12)
    replicated = np.repeat(np.arange(len(y)), w)
    assert float(auroc(y, s, w)) == pytest.approx(rank_auroc(y[replicated], s[replicated]), abs=1e-12)
    rounds = np.stack([w, np.ones_like(w)])
    np.testing.assert_allclose(auroc(y, s, rounds), [auroc(y, s, w), auroc(y, s)])
    assert np.isnan(auroc(np.zeros(10), np.arange(10)))


def test_auroc_equals_the_rank_oracle_exactly_on_real_records(demo_store: DatasetStore) -> None:
    signals = demo_store.read(np.arange(len(demo_store)))
    y = superdiagnostic_targets(demo_store.manifest)
    for scores in (np.round(signals.std(-1), 2), np.abs(signals).mean(-1).astype(np.float32)):
        for j in range(y.shape[1]):
            assert float(auroc(y[:, j], scores[:, j])) == rank_auroc(y[:, j], scores[:, j])


def test_average_precision_matches_its_definition(scored: tuple) -> None:
    y, s, w = scored
    assert float(average_precision(y, s)) == pytest.approx(_brute_ap(y, s), abs=1e-12)
    replicated = np.repeat(np.arange(len(y)), w)
    assert float(average_precision(y, s, w)) == pytest.approx(
        _brute_ap(y[replicated], s[replicated]), abs=1e-12
    )
    recall, precision = pr_curve(y, s)
    assert recall[-1] == pytest.approx(1.0) and precision[-1] == pytest.approx(y.mean())


def test_threshold_metrics_and_calibration_match_direct_counts(scored: tuple) -> None:
    y, s, _ = scored
    d = s >= 0.5
    rates = confusion(y, d).rates()
    tp, fp, fn, tn = ((y == 1) & d).sum(), ((y == 0) & d).sum(), ((y == 1) & ~d).sum(), ((y == 0) & ~d).sum()
    assert float(rates["sensitivity"]) == pytest.approx(tp / (tp + fn))
    assert float(rates["specificity"]) == pytest.approx(tn / (tn + fp))
    assert float(rates["f1"]) == pytest.approx(2 * tp / (2 * tp + fp + fn))
    ece = 0.0
    for b in range(10):
        inside = (np.clip((s * 10).astype(int), 0, 9)) == b
        if inside.any():
            ece += inside.mean() * abs(s[inside].mean() - y[inside].mean())
    assert float(expected_calibration_error(y, s, bins=10)) == pytest.approx(ece)
    fpr, tpr = roc_curve(y, s)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)


def test_patient_bootstrap_resamples_whole_patients() -> None:
    patients = np.array(["a", "a", "b", "c", "c", "c", "d"])
    weights = patient_weights(patients, rounds=500, seed=3)
    assert weights.shape == (500, 7)
    for members in (slice(0, 2), slice(3, 6)):  # a patient's records share their weight
        assert (weights[:, members] == weights[:, members][:, :1]).all()
    per_patient = weights[:, [0, 2, 3, 6]]
    assert (per_patient.sum(axis=1) == 4).all()  # four patients drawn per round
    np.testing.assert_array_equal(weights, patient_weights(patients, rounds=500, seed=3))


def test_estimate_has_no_interval_when_most_rounds_are_undefined() -> None:
    samples = np.full(200, np.nan)
    samples[:50] = 0.7
    assert estimate(0.7, samples).ci_low is None
    est = estimate(0.7, np.linspace(0.6, 0.8, 200))
    assert est.ci_low == pytest.approx(0.605, abs=1e-3) and est.ci_high == pytest.approx(0.795, abs=1e-3)
