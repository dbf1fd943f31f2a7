"""Label fractions are whole patients and reproducible; thresholds are the optimum of their rule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from components.finetune.sampling import sample_fraction
from components.finetune.thresholds import tune_threshold
from components.io.store import DatasetStore
from components.tasks.labels import select_records
from components.tasks.spec import load_task

LABELS = ["NORM", "MI", "STTC", "CD", "HYP"]


@pytest.fixture(scope="module")
def train(demo_store: DatasetStore) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Record ids, patient keys and targets of the demo store's labelled training records."""
    records = select_records(
        demo_store.manifest, demo_store.lead_masks(), load_task("ptbxl-superdiagnostic"), split="train"
    )
    manifest = demo_store.manifest.iloc[records.rows]
    return manifest["record_id"].to_numpy(), manifest["patient_key"].to_numpy(), records.targets


@pytest.mark.parametrize("fraction", [0.01, 0.1, 0.5])
def test_fractions_take_whole_patients_reproducibly(train: tuple, fraction: float) -> None:
    ids, patients, targets = train
    sample = sample_fraction(
        patients, targets, fraction, seed=0, labels=LABELS, ensure_positive_per_label=False
    )
    kept = set(patients[sample.keep])
    assert all(sample.keep[patients == p].all() for p in kept)  # a patient's records go together
    assert not any(sample.keep[patients == p].any() for p in set(patients) - kept)
    assert len(kept) == sample.n_patients == max(1, math.ceil(fraction * len(set(patients))))
    again = sample_fraction(
        patients, targets, fraction, seed=0, labels=LABELS, ensure_positive_per_label=False
    )
    np.testing.assert_array_equal(again.keep, sample.keep)
    order = np.random.default_rng(7).permutation(len(ids))  # another manifest order: the same records
    shuffled = sample_fraction(
        patients[order], targets[order], fraction, seed=0, labels=LABELS, ensure_positive_per_label=False
    )
    assert set(ids[order][shuffled.keep]) == set(ids[sample.keep])
    other = sample_fraction(
        patients, targets, fraction, seed=1, labels=LABELS, ensure_positive_per_label=False
    )
    assert set(ids[other.keep]) != set(ids[sample.keep])


def test_smaller_fractions_are_subsets_of_larger_ones(train: tuple) -> None:
    ids, patients, targets = train
    kept = [
        set(
            ids[
                sample_fraction(
                    patients, targets, f, seed=3, labels=LABELS, ensure_positive_per_label=False
                ).keep
            ]
        )
        for f in (0.01, 0.1, 0.5, 1.0)
    ]
    assert kept[0] < kept[1] < kept[2] < kept[3] == set(ids)


def test_a_tiny_fraction_gets_a_positive_patient_for_every_label(train: tuple) -> None:
    _, patients, targets = train
    plain = sample_fraction(patients, targets, 0.01, seed=0, labels=LABELS, ensure_positive_per_label=False)
    assert (targets[plain.keep].sum(0) == 0).any(), "the check needs a fraction that misses a label"
    sample = sample_fraction(patients, targets, 0.01, seed=0, labels=LABELS)
    assert (targets[sample.keep].sum(0) > 0).all()
    missing = {lab for j, lab in enumerate(LABELS) if targets[plain.keep][:, j].sum() == 0}
    assert set(sample.added_for_labels) == missing
    for label, patient in sample.added_for_labels.items():
        assert targets[patients == patient][:, LABELS.index(label)].any()


def test_fraction_outside_zero_one_is_refused(train: tuple) -> None:
    _, patients, targets = train
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="label fraction must be in"):
            sample_fraction(patients, targets, bad, seed=0, labels=LABELS)


def _brute_force(y: np.ndarray, p: np.ndarray, rule: str, target: float = 0.9) -> float:
    """The best criterion value over every cut between distinct scores."""
    values = []
    for t in np.unique(p):
        d = p >= t
        tp, fp, fn, tn = (y & d).sum(), (~y & d).sum(), (y & ~d).sum(), (~y & ~d).sum()
        if rule == "f1":
            values.append(2 * tp / (2 * tp + fp + fn))
        elif rule == "youden":
            values.append(tp / (tp + fn) - fp / (fp + tn))
        else:
            values.append(t if tp / (tp + fn) >= target else -np.inf)
    return float(max(values))


@pytest.mark.parametrize("rule", ["f1", "youden", "sensitivity"])
def test_thresholds_reach_the_best_value_of_their_rule(rule: str) -> None:
    rng = np.random.default_rng(0)
    y = rng.random(300) < 0.3
    p = np.round(np.clip(0.3 + 0.25 * y + rng.normal(0, 0.2, 300), 0, 1), 2)  # ties on purpose
    choice = tune_threshold(y, p, rule=rule, label="X", target_sensitivity=0.9)
    d = p >= choice.threshold
    tp, fp, fn, tn = (y & d).sum(), (~y & d).sum(), (y & ~d).sum(), (~y & ~d).sum()
    if rule == "f1":
        assert (
            choice.value
            == pytest.approx(_brute_force(y, p, rule))
            == pytest.approx(2 * tp / (2 * tp + fp + fn))
        )
    elif rule == "youden":
        assert choice.value == pytest.approx(_brute_force(y, p, rule))
        assert tp / (tp + fn) - fp / (fp + tn) == pytest.approx(choice.value)
    else:
        assert tp / (tp + fn) >= 0.9
        assert choice.threshold > _brute_force(y, p, rule) - 0.011  # the highest cut that still reaches 0.9
    assert not np.any(np.isclose(p, choice.threshold))  # midway between validation scores


def test_threshold_defaults_without_both_classes() -> None:
    choice = tune_threshold(np.zeros(20, dtype=bool), np.linspace(0, 1, 20), rule="f1", label="HYP")
    assert choice.threshold == 0.5 and "no positive" in choice.note
