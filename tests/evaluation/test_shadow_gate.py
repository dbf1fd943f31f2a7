"""The ``shadow:`` section of gate policies: what a shadow report must show to pass, which shipped policies
require one before production, and how promotion finds the policy a gate decision names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from components.evaluation.gates import (
    GATES_DIR,
    GatePolicy,
    ShadowPolicy,
    load_policy,
    policy_named,
    shadow_verdict,
)
from components.metrics.agreement import LabelAgreement, label_agreement
from tests.finetune.workspace import LENIENT_POLICY, write_policy

LABELS = ["NORM", "MI"]


def _agreement(n: int, flips: int) -> list[LabelAgreement]:
    """``n`` records on which the two models agree on NORM, and on MI up to ``flips`` flipped decisions."""
    rng = np.random.default_rng(3)
    production = rng.random((n, 2)) < 0.4
    candidate = production.copy()
    candidate[:flips, 1] = ~candidate[:flips, 1]
    return label_agreement(production, candidate, LABELS)


def test_a_shadow_report_within_every_bound_passes_with_a_reason_per_check() -> None:
    policy = ShadowPolicy(required=True, min_records=100, min_kappa=0.6, max_flip_rate=0.1)
    passed, reasons = shadow_verdict(policy, 200, _agreement(200, flips=4))
    assert passed and all(r.startswith("PASS") for r in reasons) and len(reasons) == 1 + 2 * 2
    assert reasons[0] == "PASS (shadow.min_records) 200 records replayed through both models ≥ 100"
    assert any(r.startswith("PASS (shadow.kappa.NORM) NORM: Cohen's kappa 1.000 ≥ 0.600") for r in reasons)
    assert "PASS (shadow.flip_rate.MI) MI: flip rate 0.020 (" in " ".join(reasons)


def test_each_bound_fails_naming_the_label_and_the_number() -> None:
    agreement = _agreement(60, flips=30)
    mi = agreement[1]
    policy = ShadowPolicy(min_records=100, min_kappa=0.6, max_flip_rate=0.1)
    passed, reasons = shadow_verdict(policy, 60, agreement)
    failed = [r for r in reasons if r.startswith("FAIL")]
    assert not passed and reasons[: len(failed)] == failed  # failures first
    assert failed == [
        "FAIL (shadow.min_records) 60 records replayed through both models < 100",
        f"FAIL (shadow.kappa.MI) MI: Cohen's kappa {mi.kappa:.3f} < 0.600",
        f"FAIL (shadow.flip_rate.MI) MI: flip rate 0.500 ({mi.flips_to_positive} to positive, "
        f"{mi.flips_to_negative} to negative of 60) > 0.100",
    ]


def test_no_records_or_no_labels_fail() -> None:
    empty = np.zeros((0, 2), dtype=bool)
    passed, reasons = shadow_verdict(
        ShadowPolicy(min_records=1, min_kappa=0.5), 0, label_agreement(empty, empty, LABELS)
    )
    assert (
        not passed
        and "FAIL (shadow.kappa.NORM) NORM: Cohen's kappa undefined (no records) < 0.500" in reasons
    )
    passed, reasons = shadow_verdict(ShadowPolicy(), 80, [])
    assert not passed and reasons[0] == "FAIL (shadow.labels) no label was compared"


def test_shadow_policy_bounds_are_validated() -> None:
    for bad in (
        {"min_records": 0},
        {"min_kappa": 1.5},
        {"max_flip_rate": -0.1},
        {"required": True, "kappa": 0.5},
    ):
        with pytest.raises(ValidationError):
            ShadowPolicy.model_validate(bad)
    assert GatePolicy.model_validate(LENIENT_POLICY).shadow is None


def test_clinical_policies_require_a_shadow_report_and_the_demo_policy_does_not() -> None:
    clinical = load_policy("ptbxl-superdiagnostic")
    assert (
        clinical.shadow is not None
        and clinical.shadow.required
        and clinical.ref == "ptbxl-superdiagnostic@v2"
    )
    assert load_policy("ptbxl-superdiagnostic-demo").shadow is None
    for path in sorted(GATES_DIR.glob("*.yaml")):
        policy = load_policy(path.stem)
        assert (policy.shadow is not None and policy.shadow.required) != path.stem.endswith("-demo"), path


def test_policy_named_finds_the_policy_a_decision_names(tmp_path: Path) -> None:
    custom = write_policy(tmp_path / "gates", shadow={"required": True})
    assert policy_named("ptbxl-superdiagnostic@v1").ref == "ptbxl-superdiagnostic@v2"  # as it is now
    assert (
        policy_named("ptbxl-superdiagnostic@v2", "ptbxl-superdiagnostic-demo").name == "ptbxl-superdiagnostic"
    )
    found = policy_named("lenient-test@v1", str(custom))
    assert found is not None and found.shadow is not None and found.shadow.required
    assert policy_named("lenient-test@v1") is None  # only a path names it
    assert policy_named("lenient-test@v1", "ptbxl-superdiagnostic-demo") is None
    assert policy_named("p") is None
