"""The gate engine on a real evaluation: each policy rule passes or fails with a reason that says why."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.evaluation.compute import EvaluationReport
from components.evaluation.errors import EvaluationError
from components.evaluation.gates import (
    GATES_DIR,
    GatePolicy,
    RegistryFacts,
    ValidationFact,
    decide,
    load_policy,
)
from components.tasks.errors import TaskError
from components.tasks.spec import task_names
from tests.evaluation.conftest import Evaluated
from tests.finetune.workspace import LENIENT_POLICY

VALIDATED = ValidationFact(validation_run_id=1, dataset_version="d" * 36, verdict="pass")
FACTS = RegistryFacts(training_validation=VALIDATED, dataset_version="d" * 36, production=None)


@pytest.fixture(scope="module")
def report(evaluated: Evaluated) -> EvaluationReport:
    return EvaluationReport.from_dict(json.loads(evaluated.result.evaluation_json.read_text())["evaluation"])


def _policy(**sections: Any) -> GatePolicy:
    return GatePolicy.model_validate(LENIENT_POLICY | sections)


def _failed(policy: GatePolicy, report: EvaluationReport, facts: RegistryFacts = FACTS) -> list[str]:
    outcome = decide(policy, report, facts)
    failed = [r for r in outcome.reasons if r.startswith("FAIL")]
    assert (outcome.verdict == "fail") == bool(failed)
    assert outcome.reasons == failed + [r for r in outcome.reasons if r.startswith("PASS")]  # failures first
    return failed


def test_shipped_policies_are_valid_and_name_existing_tasks() -> None:
    tasks = set(task_names())
    for path in sorted(GATES_DIR.glob("*.yaml")):
        policy = load_policy(path.stem)
        assert set(policy.tasks) <= tasks, path
        assert policy.ref == f"{path.stem}@v{policy.version}"


def test_policy_file_errors_name_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(LENIENT_POLICY | {"name": "p", "floors": {"bound": "median"}}))
    with pytest.raises(TaskError, match=r"p\.yaml: floors\.bound: Input should be 'point' or 'ci_low'"):
        load_policy(str(path))
    path.write_text(yaml.safe_dump(LENIENT_POLICY | {"name": "p", "floorz": {}}))
    with pytest.raises(TaskError, match="floorz: Extra inputs are not permitted"):
        load_policy(str(path))
    with pytest.raises(TaskError, match="name 'lenient-test' must match the file name 'p'"):
        path.write_text(yaml.safe_dump(LENIENT_POLICY))
        load_policy(str(path))


def test_floors_on_point_estimate_and_lower_ci_bound(report: EvaluationReport) -> None:
    macro = report.test.macro["auroc"]
    assert macro.ci_low is not None and macro.ci_low < macro.value
    assert not _failed(_policy(floors={"bound": "point", "macro_auroc": macro.value - 0.001}), report)
    failed = _failed(_policy(floors={"bound": "ci_low", "macro_auroc": macro.value - 0.001}), report)
    assert failed == [
        f"FAIL (floor.macro_auroc) macro AUROC {macro.text()}: lower 95 % CI bound {macro.ci_low:.3f} "
        f"< floor {macro.value - 0.001:.3f}"
    ]
    hyp = report.test.per_label["HYP"]["auroc"].value
    failed = _failed(_policy(floors={"bound": "point", "per_class_auroc": {"HYP": hyp + 0.01}}), report)
    assert len(failed) == 1 and failed[0].startswith("FAIL (floor.auroc.HYP) HYP AUROC")


def test_calibration_subgroups_and_size(report: EvaluationReport) -> None:
    ece = report.test.macro["ece"].value
    assert _failed(_policy(calibration={"max_ece": ece / 2}), report)[0].startswith(
        "FAIL (calibration) macro ECE"
    )
    failed = _failed(_policy(subgroups={"attributes": ["sex"], "max_gap": 0.0001, "min_records": 5}), report)
    assert (
        len(failed) == 1
        and "sex: macro AUROC gap" in failed[0]
        and "female" in failed[0]
        and "male" in failed[0]
    )
    outcome = decide(
        _policy(subgroups={"attributes": ["sex"], "max_gap": 0.0001, "min_records": 1000}), report, FACTS
    )
    assert outcome.verdict == "pass"
    assert any("fewer than two groups of ≥ 1000 records" in r for r in outcome.reasons)
    assert _failed(_policy(min_test_records=1000), report) == [
        f"FAIL (min_test_records) {report.test.n_records} test records "
        f"({report.test.n_patients} patients) < 1000"
    ]


def test_external_cohort_rules(report: EvaluationReport) -> None:
    assert report.external and report.external[0].name == "cinc"
    lenient = {"macro_auroc": 0.0, "min_positives": 1}
    assert not _failed(_policy(external=lenient), report)
    cinc = report.external[0]
    eligible = [lab for lab, n in cinc.positives.items() if 1 <= n <= cinc.n_records - 1]
    value = sum(cinc.per_label[lab]["auroc"].value for lab in eligible) / len(eligible)
    assert value < 0.999
    failed = _failed(_policy(external={"macro_auroc": value + 0.0005, "min_positives": 1}), report)
    assert failed[0].startswith("FAIL (external.cinc) external cohort cinc (6 records): macro AUROC over")
    inconclusive = decide(_policy(external={"macro_auroc": 0.5, "min_positives": 50}), report, FACTS)
    assert inconclusive.verdict == "pass"  # not required: reported, not failed
    assert any("no label with ≥ 50 positives" in r for r in inconclusive.reasons)
    without = replace(report, external=[])
    assert _failed(_policy(external=lenient | {"required": True}), without) == [
        "FAIL (external) no external cohort was evaluated (the policy requires one)"
    ]


def test_non_inferiority_needs_a_comparison_with_the_current_production_model(
    report: EvaluationReport,
) -> None:
    policy = _policy(non_inferiority={"margin": 0.02})
    assert not _failed(policy, report)  # no production model
    with_production = replace(FACTS, production="ptbxl-superdiagnostic@9")
    assert _failed(policy, report, with_production) == [
        "FAIL (non_inferiority) no paired comparison with the production model ptbxl-superdiagnostic@9 "
        "(compared with: none); evaluate the model again"
    ]
    assert not _failed(policy, report, replace(with_production, is_production=True))


def test_data_checks(report: EvaluationReport) -> None:
    failed_validation = replace(FACTS, training_validation=replace(VALIDATED, verdict="fail"))
    assert _failed(_policy(), report, failed_validation) == [
        f"FAIL (data.validation) training dataset version {'d' * 12}: validation run 1 verdict fail "
        "(not allowed: pass, warn)"
    ]
    assert _failed(_policy(), report, replace(FACTS, training_validation=None))[0].endswith(
        "has no recorded validation run"
    )
    assert _failed(_policy(), report, replace(FACTS, dataset_version=None, training_validation=None)) == [
        "FAIL (data.validation) the training data has no registered dataset version"
    ]
    assert not _failed(
        _policy(data={"require_validation": False}), report, replace(FACTS, dataset_version=None)
    )


def test_a_policy_for_another_task_is_refused(report: EvaluationReport) -> None:
    with pytest.raises(EvaluationError, match="is for tasks \\['ptbxl-rhythm'\\], not ptbxl-superdiagnostic"):
        decide(_policy(tasks=["ptbxl-rhythm"]), report, FACTS)
