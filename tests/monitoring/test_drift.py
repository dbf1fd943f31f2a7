"""Drift monitoring on real PTB-XL records: a clean window does not alarm; planted noise, baseline wander
and lead swaps at a realistic rate do, overall or in the one site they hit; too few samples decide
nothing."""

from __future__ import annotations

import numpy as np
import pytest

from components.monitoring.drift import DriftInputs, assess, embedding_drift, feature_drift, rate_drift
from components.monitoring.mmd import median_bandwidth, mmd2_of_splits, squared_distances
from components.monitoring.policy import MonitoringPolicy, load_policy
from components.quality.defects import baseline_wander, la_ra_swap, mains_hum
from components.quality.monitored import MONITORED_FEATURES, monitored_features
from components.validation import load_policy as validation_policy
from tests.monitoring.conftest import (
    FS,
    SUPERCLASSES,
    Planter,
    Records,
    features_of,
    planted,
    spectral_embedding,
)

DEFECT_RATE = 0.3


@pytest.fixture(scope="module")
def policy() -> MonitoringPolicy:
    return load_policy("default")


def _inputs(reference: Records, window: Records) -> DriftInputs:
    """Decisions stand in as the PTB-XL superclasses of each record (a perfect model's)."""
    labels = reference.table[SUPERCLASSES].to_numpy(bool)
    return DriftInputs(
        reference_features=features_of(reference),
        window_features=features_of(window),
        reference_embedding=spectral_embedding(reference.signals),
        window_embedding=spectral_embedding(window.signals),
        reference_rates=labels.mean(axis=0),
        n_reference_decisions=len(labels),
        window_decisions=window.table[SUPERCLASSES].to_numpy(bool),
        labels=SUPERCLASSES,
    )


def _defective(window: Records, defect: Planter, rate: float, rows: np.ndarray | None = None) -> Records:
    rows = np.arange(len(window.signals)) if rows is None else rows
    chosen = np.random.default_rng(1).choice(rows, round(rate * len(rows)), replace=False)
    return planted(window, defect, chosen, seed=2)


def test_features_of_a_record_do_not_depend_on_its_batch(records: Records) -> None:
    params = validation_policy().features
    x, m, n = records.signals[:12], records.masks[:12], records.n_valid[:12]
    whole = monitored_features(x, m, n, float(FS), params)
    parts = [
        monitored_features(x[i : i + 4], m[i : i + 4], n[i : i + 4], float(FS), params) for i in (0, 4, 8)
    ]
    assert set(whole) == set(MONITORED_FEATURES)
    for name in MONITORED_FEATURES:
        assert whole[name].dtype == np.float64 and whole[name].shape == (12,)
        np.testing.assert_allclose(whole[name], np.concatenate([p[name] for p in parts]), rtol=1e-6)


def test_a_clean_window_does_not_alarm(split: tuple[Records, Records], policy: MonitoringPolicy) -> None:
    assessment = assess(_inputs(*split), policy)
    assert assessment.status == "ok", assessment.reasons
    assert assessment.n_reference == 196 and assessment.n_window == 197
    tested = [t for t in assessment.features if t.skipped_reason is None]
    assert len(tested) >= 4 * len(policy.features.names)  # all, two sites, one device at least
    assert not any(t.breach for t in assessment.features)
    assert assessment.embedding is not None and assessment.embedding.p_value > 0.05
    assert not any(r.breach for r in assessment.rates)
    skipped = [t for t in assessment.features if t.skipped_reason]
    assert {t.group for t in skipped} >= {"site=2"}  # 8 window records of site 2
    assert all("the policy tests from 30" in str(t.skipped_reason) for t in skipped)


@pytest.mark.parametrize(
    ("defect", "feature"),
    [
        (mains_hum, "powerline_ratio_max"),
        (baseline_wander, "baseline_ratio_max"),
        (la_ra_swap, "limb_reversal_score"),
    ],
)
def test_a_planted_defect_rate_breaches_its_feature(
    split: tuple[Records, Records], policy: MonitoringPolicy, defect: Planter, feature: str
) -> None:
    reference, window = split
    assessment = assess(_inputs(reference, _defective(window, defect, DEFECT_RATE)), policy)
    assert assessment.status == "breach"
    (overall,) = [t for t in assessment.features if t.feature == feature and t.group == "all"]
    assert overall.breach and overall.p_adjusted < 1e-4 and overall.statistic > 0.25
    assert any(feature in reason for reason in assessment.reasons)
    clean = feature_drift(features_of(reference), features_of(window), policy)
    (before,) = [t for t in clean if t.feature == feature and t.group == "all"]
    assert not before.breach and before.p_value > 0.05


def test_drift_confined_to_one_site_is_found_in_that_site(
    split: tuple[Records, Records], policy: MonitoringPolicy
) -> None:
    reference, window = split
    site1 = np.flatnonzero(window.table["site"] == "1")
    tests = feature_drift(
        features_of(reference), features_of(_defective(window, mains_hum, 0.5, site1)), policy
    )
    powerline = {t.group: t for t in tests if t.feature == "powerline_ratio_max"}
    assert powerline["site=1"].breach and powerline["site=1"].reference == "site=1"
    assert not powerline["all"].breach  # diluted by the other sites
    assert not powerline["site=0"].breach
    assert {t.group for t in tests if t.breach and t.group.startswith("site=")} == {"site=1"}


def test_embedding_drift_separates_clean_and_noisy_windows(
    split: tuple[Records, Records], policy: MonitoringPolicy
) -> None:
    reference, window = split
    ref = spectral_embedding(reference.signals)
    clean = embedding_drift(ref, spectral_embedding(window.signals), policy, seed=0)
    noisy_window = spectral_embedding(_defective(window, mains_hum, DEFECT_RATE).signals)
    noisy = embedding_drift(ref, noisy_window, policy, seed=0)
    assert clean.p_value > 0.05 and not clean.breach
    assert noisy.p_value < 0.005 and noisy.breach and noisy.statistic > 10 * max(clean.statistic, 1e-3)
    assert embedding_drift(ref, noisy_window, policy, seed=0) == noisy
    small = policy.model_copy(update={"embedding": policy.embedding.model_copy(update={"max_samples": 50})})
    subsampled = embedding_drift(ref, noisy_window, small, seed=3)
    assert (subsampled.n_reference, subsampled.n_window) == (50, 50)


def test_unbiased_mmd_matches_its_definition(split: tuple[Records, Records]) -> None:
    x = spectral_embedding(split[0].signals[:15])
    y = spectral_embedding(split[1].signals[:11])
    d2 = squared_distances(np.concatenate([x, y]))
    kernel = np.exp(-d2 / (2 * median_bandwidth(d2) ** 2))
    kxx, kyy, kxy = kernel[:15, :15], kernel[15:, 15:], kernel[:15, 15:]
    expected = (
        (kxx.sum() - np.trace(kxx)) / (15 * 14) + (kyy.sum() - np.trace(kyy)) / (11 * 10) - 2 * kxy.mean()
    )
    first = np.zeros((1, 26))
    first[0, :15] = 1
    assert mmd2_of_splits(kernel, first)[0] == pytest.approx(expected, rel=1e-10)


def test_a_case_mix_shift_moves_the_positive_rate(
    split: tuple[Records, Records], policy: MonitoringPolicy
) -> None:
    reference, window = split
    ref_labels = reference.table[SUPERCLASSES].to_numpy(bool)
    win_labels = window.table[SUPERCLASSES].to_numpy(bool)
    clean = rate_drift(ref_labels.mean(axis=0), len(ref_labels), win_labels, SUPERCLASSES, policy)
    assert not any(r.breach for r in clean)
    normal = np.flatnonzero(win_labels[:, 0])
    dropped = np.random.default_rng(4).choice(normal, round(0.7 * len(normal)), replace=False)
    referral = np.delete(win_labels, dropped, axis=0)  # a referral clinic: few normal ECGs
    shifted = {
        r.label: r
        for r in rate_drift(ref_labels.mean(axis=0), len(ref_labels), referral, SUPERCLASSES, policy)
    }
    assert shifted["NORM"].breach and shifted["NORM"].p_adjusted < 1e-3
    assert shifted["NORM"].window_rate < shifted["NORM"].reference_rate - 0.15


def test_too_few_window_samples_decide_nothing(
    split: tuple[Records, Records], policy: MonitoringPolicy
) -> None:
    reference, window = split
    few = window.take(np.arange(20))
    planted_few = planted(few, mains_hum, np.arange(20), seed=0)
    assessment = assess(_inputs(reference, planted_few), policy)
    assert assessment.status == "insufficient"
    assert assessment.features == [] and assessment.embedding is None and assessment.rates == []
    assert assessment.reasons == [
        "the window has 20 samples; policy default@v1 needs at least 100: nothing decided"
    ]
    assert assessment.to_dict()["status"] == "insufficient"
