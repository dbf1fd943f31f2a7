"""The evaluate stage on real records: the report, the registry record, non-inferiority, and the gate
blocking promotion and packaging."""

from __future__ import annotations

import json
import math
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
import torch
from PIL import Image

from components.config import Settings
from components.evaluation.stage import evaluate, gate
from components.models.checkpoint import foundation_meta
from components.models.task_model import load_task_model, save_task_model
from components.registry import PromotionRefusedError, open_registry
from components.workspace import Workspace
from tests.evaluation.conftest import Evaluated
from tests.finetune.workspace import TASK, run_cli, write_policy

MODEL = "ptbxl-superdiagnostic@1"


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.links: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "img":
            self.images.append(str(values["src"]))
        if tag == "a":
            self.links.append(str(values["href"]))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_report_renders_with_every_plot_and_the_model_card(evaluated: Evaluated) -> None:
    result = evaluated.result
    page = _Page()
    page.feed(result.report_html.read_text())
    expected = {"roc.png", "pr.png", "calibration.png", "confusion.png", "subgroups.png"}
    expected |= {
        f"external-cinc-{name}" for name in ("roc.png", "pr.png", "calibration.png", "confusion.png")
    }
    assert expected <= set(page.images) and set(page.images) == set(result.images)
    for src in page.images:
        path = result.report_dir / src
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", src
        with Image.open(path) as image:
            image.verify()
            assert image.format == "PNG" and min(image.size) > 100
    for href in page.links:
        assert (result.report_dir / href).is_file(), href
    text = " ".join(page.text)
    assert "Gate lenient-test@v1: PASS" in text and "External cohort cinc" in text and "Subgroups" in text

    card = result.model_card_md.read_text()
    for section in (
        "## Intended use",
        "## Training data",
        "## Label definitions",
        "## Metrics",
        "## Gate decision",
        "## Known limitations",
        "## Lineage",
    ):
        assert section in card
    with open_registry(evaluated.settings.resolved_registry_url) as registry:
        info = registry.model(MODEL)
        foundation = foundation_meta(Path(registry.model("ecg-fm@1").artifact_uri))
    assert str(info.dataset_version_md5) in card and "validation run 1: pass" in card
    assert "foundation model: ecg-fm@1" in card and "model: ecg-fm@1" in card  # details and lineage
    assert f"(pretraining recipe ecgclip, config sha256 {foundation['config_sha256']})" in card
    assert "IMI (inferior myocardial infarction)" in card  # label definitions resolve the codes
    assert result.model_card_html.read_text().count("<h3>") == card.count("\n## ")


def test_metrics_verdict_and_reasons_are_in_the_registry(evaluated: Evaluated) -> None:
    result = evaluated.result
    with open_registry(evaluated.settings.resolved_registry_url) as registry:
        metrics = {(m.split, m.cohort, m.name): m for m in registry.metrics(MODEL)}
        decision = registry.latest_gate_decision(MODEL)
        run = registry.get_run(int(result.registry_run_id or 0))
    macro = metrics[("test", "all", "macro_auroc")]
    assert macro.value == pytest.approx(result.macro_auroc["value"]) and macro.n == result.n_records == 53
    assert macro.ci_low is not None and macro.ci_high is not None
    for label in ("NORM", "MI", "STTC", "CD", "HYP"):
        for name in ("auroc", "pr_auc", "sensitivity", "specificity", "f1", "ece", "threshold"):
            assert ("test", "all", f"{name}_{label}") in metrics
    assert {c for s, c, n in metrics if s == "test" and n == "macro_auroc"} >= {
        "all",
        "sex=female",
        "sex=male",
    }
    assert any(c.startswith("age=") for _, c, _ in metrics) and any(
        c.startswith("device=") for _, c, _ in metrics
    )
    assert ("external:cinc", "all", "macro_auroc") in metrics
    assert decision is not None and decision.verdict == result.verdict == "pass"
    assert decision.policy == "lenient-test@v1" and decision.reasons == result.reasons
    assert run.kind == "evaluate" and run.status == "succeeded"
    assert run.parameters["report_dir"] == str(result.report_dir)


def test_bootstrap_intervals_bracket_their_point_estimates(evaluated: Evaluated) -> None:
    data = json.loads(evaluated.result.evaluation_json.read_text())["evaluation"]
    assert data["settings"]["rounds"] >= 200
    checked = 0
    for cohort in [data["test"], *data["external"]]:
        estimates = [cohort["macro"][m] for m in ("auroc", "pr_auc")]
        estimates += [cohort["per_label"][lab][m] for lab in data["labels"] for m in ("auroc", "pr_auc")]
        estimates += [s["macro_auroc"] for s in cohort["subgroups"]]
        for est in estimates:
            if est["ci_low"] is None:
                continue
            assert est["ci_low"] <= est["value"] <= est["ci_high"], est
            checked += 1
    assert checked >= 25


def test_evaluating_again_records_no_duplicate_metrics(evaluated: Evaluated, tmp_path: Path) -> None:
    again = evaluate(Workspace(evaluated.settings), MODEL, external="cinc", gate_policy=str(evaluated.policy))
    assert again.metrics_recorded == 0 and again.reasons == evaluated.result.reasons
    assert again.macro_auroc == evaluated.result.macro_auroc


def _register_variant(settings: Settings, directory: Path, permute_head: bool) -> str:
    """Register a copy of ptbxl-superdiagnostic@1, optionally with its head's rows shuffled (a label-order
    bug: each label is scored by another label's output)."""
    with open_registry(settings.resolved_registry_url) as registry:
        info = registry.model(MODEL)
        model = load_task_model(registry.verify_artifact(MODEL))
        if permute_head:
            with torch.no_grad():
                order = torch.tensor([2, 0, 4, 1, 3])
                model.head.weight.copy_(model.head.weight[order])
                model.head.bias.copy_(model.head.bias[order])
        save_task_model(model, directory)
        return registry.register_model(
            TASK,
            kind="task",
            task=TASK,
            artifact_uri=str(directory),
            parent=info.parent,
            dataset_version_md5=info.dataset_version_md5,
            validation_run_id=info.validation_run_id,
        ).ref


def test_worse_candidate_fails_non_inferiority_and_cannot_be_promoted_or_packaged(
    ft_settings: Settings, tmp_path: Path
) -> None:
    policy = write_policy(tmp_path / "gates", non_inferiority={"margin": 0.02})
    assert evaluate(Workspace(ft_settings), MODEL, gate_policy=str(policy)).verdict == "pass"
    with open_registry(ft_settings.resolved_registry_url) as registry:
        registry.promote(MODEL, "production", reason="baseline for the test")

    same = _register_variant(ft_settings, tmp_path / "same", permute_head=False)
    ok = evaluate(Workspace(ft_settings), same, gate_policy=str(policy))
    assert ok.verdict == "pass" and ok.comparison is not None
    assert ok.comparison["production"] == MODEL and ok.comparison["difference"]["value"] == 0.0

    worse = _register_variant(ft_settings, tmp_path / "worse", permute_head=True)
    bad = evaluate(Workspace(ft_settings), worse, gate_policy=str(policy))
    assert bad.verdict == "fail"
    assert bad.reasons[0].startswith(
        "FAIL (non_inferiority) macro AUROC difference vs ptbxl-superdiagnostic@1"
    )
    difference = bad.comparison["difference"] if bad.comparison else {}
    assert difference["value"] < 0 and difference["ci_low"] < -0.02
    assert all(r.startswith("PASS") for r in bad.reasons[1:])  # only non-inferiority failed

    with open_registry(ft_settings.resolved_registry_url) as registry:
        decision = registry.latest_gate_decision(worse)
        assert decision is not None and decision.verdict == "fail" and decision.reasons == bad.reasons
        with pytest.raises(
            PromotionRefusedError, match=r"failed gate lenient-test@v1: FAIL \(non_inferiority\)"
        ):
            registry.promote(worse, "staging")
    code, _, err = run_cli(["registry", "promote", worse, "staging"], ft_settings)
    assert code == 2 and "refusing to move" in err and "FAIL (non_inferiority)" in err

    from components.serving.errors import PackagingRefusedError
    from components.serving.package import package

    with pytest.raises(PackagingRefusedError, match="refusing to package"):
        package(Workspace(ft_settings), worse)

    with open_registry(ft_settings.resolved_registry_url) as registry:
        change = registry.promote(worse, "staging", force=True, reason="clinical review ticket 123")
        audit = registry.audit(entity_id=worse, action="stage.changed", limit=1)[0]
    assert (
        change.forced
        and audit.reason == "clinical review ticket 123"
        and audit.details["gate_verdict"] == "fail"
    )


def test_gate_decides_again_when_production_changes(ft_settings: Settings, tmp_path: Path) -> None:
    policy = write_policy(tmp_path / "gates", non_inferiority={"margin": 0.02})
    candidate = _register_variant(ft_settings, tmp_path / "candidate", permute_head=False)
    assert evaluate(Workspace(ft_settings), candidate, gate_policy=str(policy)).verdict == "pass"
    assert evaluate(Workspace(ft_settings), MODEL, gate_policy=str(policy)).verdict == "pass"
    with open_registry(ft_settings.resolved_registry_url) as registry:
        registry.promote(MODEL, "production", reason="test")
    # the candidate's evaluation predates this production model: it was never compared with it
    again = gate(Workspace(ft_settings), candidate, policy=str(policy))
    assert again.verdict == "fail"
    assert again.reasons[0].startswith(
        "FAIL (non_inferiority) no paired comparison with the production model"
    )
    code, out, _ = run_cli(["gate", candidate, "--policy", str(policy), "--json"], ft_settings)
    assert code == 1 and json.loads(out)["verdict"] == "fail"
    assert evaluate(Workspace(ft_settings), candidate, gate_policy=str(policy)).verdict == "pass"


def test_training_data_that_failed_validation_fails_the_gate(ft_settings: Settings, tmp_path: Path) -> None:
    with open_registry(ft_settings.resolved_registry_url) as registry:
        info = registry.model(MODEL)
        failed = registry.record_validation_run(
            str(info.dataset_version_md5),
            policy_version="test",
            verdict="fail",
            report_uri="x",
            statistics={},
        )
        directory = tmp_path / "model"
        shutil.copytree(registry.verify_artifact(MODEL), directory)
        ref = registry.register_model(
            TASK,
            kind="task",
            task=TASK,
            artifact_uri=str(directory),
            parent=info.parent,
            validation_run_id=failed,
        ).ref
    result = evaluate(Workspace(ft_settings), ref, gate_policy=str(write_policy(tmp_path / "gates")))
    assert result.verdict == "fail"
    assert result.reasons[0].startswith(
        f"FAIL (data.validation) training dataset version {info.dataset_version_md5[:12]}"
    )
    assert f"validation run {failed} verdict fail" in result.reasons[0]


def test_cli_evaluate_under_the_clinical_gate_exits_1_with_json(ft_settings: Settings) -> None:
    code, out, err = run_cli(["evaluate", MODEL, "--json"], ft_settings)
    assert code == 1, err
    result = json.loads(out)
    assert result["policy"] == "ptbxl-superdiagnostic@v2" and result["verdict"] == "fail"
    assert "FAIL (min_test_records) 53 test records (46 patients) < 500" in result["reasons"]
    assert math.isfinite(result["macro_auroc"]["value"]) and Path(result["report_html"]).is_file()
