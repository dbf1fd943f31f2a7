"""`ecgops review` and `ecgops registry promote` with inputs that name nothing real or break a rule: one red
line, exit 2, and the registry (stages, audit log, steward decisions) as it was."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from components.config import Settings
from components.registry import open_registry
from tests.finetune.workspace import run_cli


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    root = tmp_path / "workspace"
    root.mkdir()
    return Settings(workspace=root, registry_url=f"sqlite:///{tmp_path / 'registry.db'}", patient_salt="x")  # type: ignore[arg-type]


def _models(url: str) -> tuple[str, str, str]:
    """A task model whose gate passed, one whose gate failed, and a foundation model."""
    sha = hashlib.sha256(b"weights").hexdigest()
    with open_registry(url, actor="tester") as reg:
        refs = []
        for verdict in ("pass", "fail"):
            model = reg.register_model("af", kind="task", task="af", artifact_uri="x", sha256=sha)
            reasons = [] if verdict == "pass" else ["FAIL (floor.macro_auroc) macro AUROC 0.61 < floor 0.85"]
            reg.record_gate_decision(model, policy="af-gate@v1", verdict=verdict, reasons=reasons)
            refs.append(model.ref)
        foundation = reg.register_model("ecg-fm", kind="foundation", artifact_uri="y", sha256=sha)
        return refs[0], refs[1], foundation.ref


def _state(url: str) -> tuple[list[tuple[str, str | None]], int]:
    with open_registry(url) as reg:
        return [(m.ref, m.stage) for m in reg.models()], len(reg.audit(limit=None))


def _one_red_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def test_promote_refusals_change_nothing(settings: Settings) -> None:
    url = settings.resolved_registry_url
    passed, failed, foundation = _models(url)
    before = _state(url)
    cases = [
        (["registry", "promote", "af@9", "staging"], "no model 'af@9'"),
        (["registry", "promote", "nothing-here", "staging"], "nothing-here"),
        (["registry", "promote", "af@two", "staging"], "the version after '@' must be a number"),
        (
            ["registry", "promote", passed, "prod"],
            "stage must be one of candidate, staging, production, archived",
        ),
        (["registry", "promote", failed, "production"], "failed gate af-gate@v1"),
        (["registry", "promote", failed, "production", "--force"], "--reason"),
        (["registry", "promote", foundation, "staging"], "ecg-fm@1"),
        (
            ["registry", "promote", passed, "staging", "--url", "nonsense://x"],
            "is not one SQLAlchemy can open",
        ),
        (
            ["registry", "promote", "[bold]af@1", "staging"],
            "[bold]af@1",
        ),  # markup in the input is shown as typed
    ]
    for args, message in cases:
        code, out, err = run_cli(args, settings)
        assert code == 2, (args, out, err)
        assert message in _one_red_line(err), (args, err)
    assert _state(url) == before


def test_gate_of_an_unknown_model_is_one_red_line(settings: Settings) -> None:
    _models(settings.resolved_registry_url)
    code, _, err = run_cli(["gate", "af@9"], settings)
    assert code == 2 and "no model 'af@9'" in _one_red_line(err)


def test_review_without_a_validation_or_a_note_or_with_a_bad_status(settings: Settings) -> None:
    url = settings.resolved_registry_url
    for args, message in [
        (
            ["review", "accept", "0123456789abcdef", "--note", "ok", "--dataset", "demo"],
            "has not been validated yet",
        ),
        (
            ["review", "reject", "0123456789abcdef", "--note", "bad", "--dataset", "nope"],
            "'nope' has not been validated",
        ),
        (
            ["review", "accept", "0123456789abcdef", "--note", "  ", "--dataset", "demo"],
            "a note saying why is required",
        ),
        (["review", "list", "--dataset", "demo"], "has not been validated yet"),
    ]:
        code, out, err = run_cli(args, settings)
        assert code == 2, (args, out, err)
        assert message in out + err and "Traceback" not in out + err, (args, out, err)
    code, out, err = run_cli(["review", "list", "--status", "approved"], settings)
    assert code == 2 and "Invalid value for '--status'" in out + err and "Traceback" not in out + err
    with open_registry(url) as reg:
        assert reg.steward_decisions("demo") == {}
