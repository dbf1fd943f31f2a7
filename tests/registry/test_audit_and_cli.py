"""Audit completeness (every stage change, same transaction) and the CLI's tables, JSON and errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from components.cli.registry_cmd import registry_app
from components.registry import MetricInfo, PromotionRefusedError, Registry

from .helpers import SHA


def _gated(reg: Registry, verdict: str = "pass") -> str:
    model = reg.register_model("af", kind="task", task="af", artifact_uri="x", sha256=SHA)
    reg.record_gate_decision(model, policy="p", verdict=verdict, reasons=[] if verdict == "pass" else ["low"])
    return model.ref


def test_every_stage_change_is_audited_with_who_and_why(reg: Registry) -> None:
    a, b = _gated(reg), _gated(reg)
    reg.promote(a, "staging", actor="ann", reason="smoke tests green")
    reg.promote(a, "production", actor="ann", reason="go")
    reg.promote(b, "production", actor="bob", reason="better AUROC")
    reg.promote(b, "archived", actor="bob", reason="rollback")
    with pytest.raises(PromotionRefusedError):
        reg.promote(b, "archived")
    changes = [
        (e.entity_id, e.details["from"], e.details["to"], e.actor, e.reason)
        for e in reversed(reg.audit(action="stage.changed"))
    ]
    assert changes == [
        ("af@1", None, "candidate", "tester", None),
        ("af@2", None, "candidate", "tester", None),
        ("af@1", "candidate", "staging", "ann", "smoke tests green"),
        ("af@1", "staging", "production", "ann", "go"),
        ("af@1", "production", "archived", "bob", "replaced by af@2"),
        ("af@2", "candidate", "production", "bob", "better AUROC"),
        ("af@2", "production", "archived", "bob", "rollback"),
    ]
    assert reg.model_at_stage("af") is None


def test_a_stage_change_and_its_audit_entry_commit_together(reg: Registry) -> None:
    a = _gated(reg)
    before = len(reg.audit(limit=None))
    with pytest.raises(RuntimeError), reg.atomic():
        reg.promote(a, "production", reason="go")
        assert reg.model(a).stage == "production"
        raise RuntimeError("crash after the stage row, before commit")
    assert reg.model(a).stage == "candidate"
    assert len(reg.audit(limit=None)) == before


def test_cli_models_show_promote_audit(reg: Registry, db_url: str) -> None:
    good, bad = _gated(reg), _gated(reg, "fail")
    reg.record_metrics(good, [MetricInfo("test", "all", "auroc", 0.9, 0.85, 0.95, 100)])
    runner = CliRunner()

    def cli(*args: str) -> tuple[int, str]:
        result = runner.invoke(registry_app, [*args, "--url", db_url])
        return result.exit_code, result.output

    code, out = cli("models")
    assert code == 0 and "af@1" in out and "candidate" in out
    code, out = cli("models", "--json", "--stage", "candidate")
    assert code == 0 and [m["version"] for m in json.loads(out)] == [2, 1]
    code, out = cli("show", "af@1")
    assert code == 0 and "auroc" in out and "[0.8500, 0.9500]" in out
    code, out = cli("show", "af@1", "--json")
    assert json.loads(out)["gate"]["verdict"] == "pass"
    code, out = cli("promote", bad, "production")
    assert code == 2 and "failed gate p: low" in out and "Traceback" not in out
    code, out = cli("promote", bad, "production", "--force")
    assert code == 2 and "--reason" in out
    code, out = cli("promote", good, "production", "--reason", "release 1")
    assert code == 0 and "candidate -> production" in out
    code, out = cli("promote", bad, "production", "--force", "--reason", "override", "--json")
    assert code == 0 and json.loads(out)["demoted"] == ["af@1"] and json.loads(out)["forced"] is True
    code, out = cli("audit", "--model", "af@1", "--action", "stage.changed", "--json")
    assert [e["details"]["to"] for e in json.loads(out)] == ["archived", "production", "candidate"]
    code, out = cli("audit")
    assert code == 0 and "override" in out
    code, out = cli("show", "missing@1")
    assert code == 2 and "no model 'missing@1'" in out
