"""The shadow rule of promotion (``evaluation.release.promote``) on a registry with real rows: a model whose
gate policy requires a shadow report goes to production only with a passed report against the current
production model, or forced with a reason (audited); other policies and stages are unaffected."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from components.cli.registry_cmd import registry_app
from components.config import Settings
from components.evaluation.release import ShadowRequiredError, promote, promote_candidate
from components.registry import InvalidArgumentError, Registry, ShadowReportRecord, StageChangedError
from components.workspace import Workspace
from tests.finetune.workspace import LENIENT_POLICY

from .helpers import SHA

TASK = "ptbxl-superdiagnostic"
CLINICAL = "ptbxl-superdiagnostic@v2"  # shadow: required
DEMO = "ptbxl-superdiagnostic-demo@v2"  # no shadow section
COMMAND = f"ecgops shadow {TASK} --candidate {TASK}@2"


@pytest.fixture
def ws(tmp_path: Path, db_url: str) -> Workspace:
    """A workspace without params.yaml (default parameters) on the test's registry."""
    return Workspace(Settings(workspace=tmp_path, registry_url=db_url))


def _gated(reg: Registry, policy: str = CLINICAL) -> str:
    ref = reg.register_model(TASK, kind="task", task=TASK, artifact_uri="x", sha256=SHA).ref
    reg.record_gate_decision(ref, policy=policy, verdict="pass", reasons=["PASS (floor.macro_auroc) ..."])
    return ref


def _report(reg: Registry, candidate: str, production: str | None, passed: bool) -> int:
    reasons = (
        ["PASS (shadow.min_records) 600 records"]
        if passed
        else ["FAIL (shadow.kappa.MI) MI: kappa 0.41 < 0.60"]
    )
    record = ShadowReportRecord(
        candidate, production, "log:2026-12-01..2026-12-07", 600, {}, passed, tuple(reasons)
    )
    return reg.record_shadow_report(record).id


def _with_production(ws: Workspace, reg: Registry) -> tuple[str, str]:
    """The task's first model promoted to production (no shadow needed: nothing to compare with), and a
    gated candidate."""
    production = _gated(reg)
    change = promote(ws, production, "production", reason="first release")
    assert (change.to_stage, change.forced) == ("production", False)
    assert reg.audit(action="stage.shadow_overridden") == []
    return production, _gated(reg)


def test_without_a_shadow_report_production_is_refused_naming_the_command(
    ws: Workspace, reg: Registry
) -> None:
    production, candidate = _with_production(ws, reg)
    _report(reg, candidate, None, passed=True)  # made before there was a production model: does not count
    with pytest.raises(ShadowRequiredError) as refused:
        promote(ws, candidate, "production", reason="release 2")
    message = str(refused.value)
    wanted = f"a passed shadow report of {candidate} against the production model {production}"
    assert f"gate policy {CLINICAL} requires {wanted}" in message
    assert f"`{COMMAND}`" in message and "--force --reason" in message
    assert reg.model(candidate).stage == "candidate" and reg.model(production).stage == "production"
    assert promote(ws, candidate, "staging", reason="staging needs no shadow").to_stage == "staging"


def test_a_failed_shadow_report_is_refused_with_its_reasons(ws: Workspace, reg: Registry) -> None:
    production, candidate = _with_production(ws, reg)
    _report(reg, candidate, production, passed=True)
    failed = _report(reg, candidate, production, passed=False)  # the latest report counts
    with pytest.raises(
        ShadowRequiredError,
        match=rf"latest one \(#{failed}, .*600 records from log:2026-12-01..2026-12-07\) failed: "
        r"FAIL \(shadow.kappa.MI\) MI: kappa 0.41 < 0.60",
    ):
        promote(ws, candidate, "production", reason="release 2")
    assert reg.model(candidate).stage == "candidate"


def test_a_passed_shadow_report_against_the_production_model_allows_production(
    ws: Workspace, reg: Registry
) -> None:
    production, candidate = _with_production(ws, reg)
    _report(reg, candidate, production, passed=False)
    _report(reg, candidate, production, passed=True)
    change = promote(ws, candidate, "production", reason="release 2")
    assert (change.from_stage, change.to_stage, change.forced, change.demoted) == (
        "candidate",
        "production",
        False,
        (production,),
    )
    assert reg.model(production).stage == "archived"
    assert reg.audit(action="stage.shadow_overridden") == []


def test_forcing_with_a_reason_promotes_and_audits_the_override(ws: Workspace, reg: Registry) -> None:
    production, candidate = _with_production(ws, reg)
    with pytest.raises(InvalidArgumentError, match="--force needs a --reason"):
        promote(ws, candidate, "production", force=True)
    with pytest.raises(StageChangedError):
        promote(ws, candidate, "production", reason="ticket 9", force=True, expected_stage="staging")
    assert reg.model(candidate).stage == "candidate" and reg.audit(action="stage.shadow_overridden") == []
    change = promote(ws, candidate, "production", reason="outage fix, ticket 9", force=True)
    assert change.to_stage == "production" and change.demoted == (production,)
    [entry] = reg.audit(action="stage.shadow_overridden")
    assert (entry.entity_id, entry.reason, entry.actor) == (
        candidate,
        "outage fix, ticket 9",
        ws.settings.actor,
    )
    assert COMMAND in entry.details["missing"] and entry.details["production"] == production
    assert entry.details["policy"] == CLINICAL


def test_the_demo_policy_promotes_without_a_shadow_report(ws: Workspace, reg: Registry) -> None:
    production = _gated(reg, DEMO)
    promote(ws, production, "production", reason="first")
    candidate = _gated(reg, DEMO)
    assert promote_candidate(ws, candidate, "production", "flow-1") == f"{candidate}: candidate -> production"
    assert reg.audit(action="stage.shadow_overridden") == []


def test_the_retrain_flow_leaves_a_candidate_without_a_shadow_report_where_it_is(
    ws: Workspace, reg: Registry
) -> None:
    _, candidate = _with_production(ws, reg)
    said = promote_candidate(ws, candidate, "production", "flow-1")
    assert said.startswith(f"{candidate} stays a candidate: refusing to move") and COMMAND in said
    assert reg.model(candidate).stage == "candidate"


def test_a_policy_that_cannot_be_found_leaves_the_rule_unknown(
    ws: Workspace, reg: Registry, tmp_path: Path
) -> None:
    production = _gated(reg, "lenient-test@v1")
    promote(ws, production, "production", reason="first: nothing to compare with")
    candidate = _gated(reg, "lenient-test@v1")
    with pytest.raises(
        ShadowRequiredError,
        match=rf"neither evaluate.gate_policies\[{TASK}\] in params.yaml nor "
        rf"schemas/gates/lenient-test.yaml.*`ecgops gate {candidate}`",
    ):
        promote(ws, candidate, "production", reason="release 2")
    path = tmp_path / "lenient-test.yaml"
    path.write_text(yaml.safe_dump(LENIENT_POLICY | {"shadow": {"required": True}}))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"evaluate": {"gate_policies": {TASK: str(path)}}}))
    configured = Workspace(ws.settings)  # reads the params.yaml just written
    with pytest.raises(
        ShadowRequiredError, match="gate policy lenient-test@v1 requires a passed shadow report"
    ):
        promote(configured, candidate, "production", reason="release 2")
    _report(reg, candidate, production, passed=True)
    assert promote(configured, candidate, "production", reason="release 2").demoted == (production,)


def test_cli_promote_refuses_then_forces_with_the_audit_trail(
    ws: Workspace, reg: Registry, db_url: str
) -> None:
    _, candidate = _with_production(ws, reg)
    runner = CliRunner()
    result = runner.invoke(
        registry_app, ["promote", candidate, "production", "--reason", "go", "--url", db_url]
    )
    assert result.exit_code == 2 and COMMAND in result.output and "Traceback" not in result.output
    result = runner.invoke(
        registry_app,
        ["promote", candidate, "production", "--force", "--reason", "sign-off 7", "--url", db_url],
    )
    assert result.exit_code == 0 and "candidate -> production" in result.output, result.output
    result = runner.invoke(
        registry_app, ["audit", "--action", "stage.shadow_overridden", "--json", "--url", db_url]
    )
    assert [(e["entity_id"], e["reason"]) for e in yaml.safe_load(result.output)] == [
        (candidate, "sign-off 7")
    ]
