"""Agreement between two models' decisions: kappa against scikit-learn and hand-counted tables, flips,
the conventions for undefined cases, and the probability shift."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from components.metrics.agreement import LabelAgreement, cohen_kappa, label_agreement, probability_shift


def test_kappa_matches_scikit_learn_on_random_raters() -> None:
    rng = np.random.default_rng(7)
    for n, prevalence, noise in [(50, 0.5, 0.1), (400, 0.08, 0.05), (1000, 0.3, 0.4), (7, 0.5, 0.5)]:
        a = rng.random(n) < prevalence
        b = np.where(rng.random(n) < noise, ~a, a)
        assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)


def test_kappa_of_a_hand_counted_table() -> None:
    # 20 both yes, 5 a only, 10 b only, 15 both no: po = 0.7, pe = 0.5·0.6 + 0.5·0.4 = 0.5, kappa = 0.4
    a = np.array([True] * 25 + [False] * 25)
    b = np.array([True] * 20 + [False] * 5 + [True] * 10 + [False] * 15)
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa(a, a) == 1.0 and cohen_kappa(a, ~a) == pytest.approx(-1.0)


def test_kappa_conventions_for_undefined_cases() -> None:
    yes, no = np.ones(30, dtype=bool), np.zeros(30, dtype=bool)
    assert cohen_kappa(yes, yes) == 1.0 and cohen_kappa(no, no) == 1.0  # constant and equal
    assert cohen_kappa(yes, no) == 0.0 == cohen_kappa_score(yes, no)  # constant, different
    assert math.isnan(cohen_kappa(np.array([], dtype=bool), np.array([], dtype=bool)))
    with pytest.raises(ValueError, match="boolean array"):
        cohen_kappa(np.array([0.2, 0.9]), np.array([True, False]))
    with pytest.raises(ValueError, match="same length"):
        cohen_kappa(yes, yes[:3])


def test_label_agreement_counts_flips_per_label() -> None:
    production = np.array([[1, 0, 1], [1, 0, 1], [0, 0, 1], [0, 0, 1], [1, 0, 1], [0, 0, 1]], dtype=bool)
    candidate = np.array([[1, 1, 1], [0, 0, 1], [0, 0, 1], [1, 0, 1], [1, 0, 1], [0, 0, 1]], dtype=bool)
    mi, cd, norm = label_agreement(production, candidate, ["MI", "CD", "NORM"])
    assert mi == LabelAgreement("MI", 6, 4 / 6, mi.kappa, 1, 1, 2 / 6)
    assert mi.kappa == pytest.approx(cohen_kappa_score(production[:, 0], candidate[:, 0]))
    assert (cd.flips_to_positive, cd.flips_to_negative, cd.flip_rate) == (1, 0, pytest.approx(1 / 6))
    assert cd.kappa == pytest.approx(0.0)  # production never positive: agreement is all chance
    assert norm.kappa == 1.0 and norm.agreement == 1.0 and norm.flip_rate == 0.0
    assert mi.to_dict() == {
        "label": "MI",
        "n": 6,
        "agreement": pytest.approx(4 / 6),
        "kappa": pytest.approx(mi.kappa),
        "flips_to_positive": 1,
        "flips_to_negative": 1,
        "flip_rate": pytest.approx(2 / 6),
    }


def test_label_agreement_without_records_is_undefined_and_json_ready() -> None:
    empty = np.zeros((0, 2), dtype=bool)
    rows = label_agreement(empty, empty, ["AF", "SR"])
    assert all(math.isnan(r.kappa) and math.isnan(r.agreement) and r.n == 0 for r in rows)
    assert rows[0].to_dict() == {
        "label": "AF",
        "n": 0,
        "agreement": None,
        "kappa": None,
        "flips_to_positive": 0,
        "flips_to_negative": 0,
        "flip_rate": None,
    }


def test_label_agreement_refuses_mismatched_inputs() -> None:
    decisions = np.zeros((4, 2), dtype=bool)
    with pytest.raises(ValueError, match="2 label columns but 3 label names"):
        label_agreement(decisions, decisions, ["a", "b", "c"])
    with pytest.raises(ValueError, match="one shape"):
        label_agreement(decisions, decisions[:, :1], ["a", "b"])
    with pytest.raises(ValueError, match="boolean array"):
        label_agreement(decisions.astype(float), decisions, ["a", "b"])


def test_probability_shift_is_the_mean_absolute_difference_per_label() -> None:
    production = np.array([[0.9, 0.1], [0.2, 0.4], [0.5, 0.5]])
    candidate = np.array([[0.7, 0.1], [0.4, 0.1], [0.5, 0.8]])
    np.testing.assert_allclose(probability_shift(production, candidate), [0.4 / 3, 0.6 / 3])
    assert np.isnan(probability_shift(np.zeros((0, 3)), np.zeros((0, 3)))).all()
    with pytest.raises(ValueError, match="one shape"):
        probability_shift(production, candidate[:2])
