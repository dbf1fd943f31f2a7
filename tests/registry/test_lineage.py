"""Lineage both ways: from a Bento back to data, code and checks; from a dataset version forward to Bentos."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from components.cli.registry_cmd import registry_app
from components.registry import LineageNode, Registry

from .helpers import MD5_A, MD5_B, SHA, add_dataset


def _build(reg: Registry) -> None:
    """dv A -> fm@1 (pretrain) -> fm@2 (continued on dv B) -> af@1 (dv B) -> bento; af@2 from fm@1 on dv A."""
    add_dataset(reg, MD5_A)
    add_dataset(reg, MD5_B, parent=MD5_A)
    add_dataset(reg, "e" * 32, parent=MD5_B)
    vr_b = reg.record_validation_run(
        MD5_B, policy_version="v3", verdict="pass", report_uri="docs/b", statistics={}
    )
    with reg.run("pretrain", parameters={"epochs": 10}) as run1:
        reg.register_model(
            "fm", kind="foundation", artifact_uri="x", sha256=SHA, dataset_version_md5=MD5_A, run_id=run1
        )
    with reg.run("pretrain", parameters={"epochs": 2}) as run2:
        reg.register_model(
            "fm",
            kind="foundation",
            artifact_uri="x",
            sha256=SHA,
            parent="fm@1",
            validation_run_id=vr_b,
            run_id=run2,
        )
    with reg.run("finetune", parameters={"head": "linear"}) as run3:
        reg.register_model(
            "af",
            kind="task",
            task="af",
            artifact_uri="x",
            sha256=SHA,
            parent="fm@2",
            dataset_version_md5=MD5_B,
            validation_run_id=vr_b,
            run_id=run3,
        )
    reg.record_gate_decision("af@1", policy="gate-v1", verdict="pass", reasons=[])
    reg.register_bento("af_svc:1", model="af@1", artifact_uri="x", sha256=SHA)
    reg.register_model(
        "af", kind="task", task="af", artifact_uri="x", sha256=SHA, parent="fm@1", dataset_version_md5=MD5_A
    )


def _labels(node: LineageNode) -> list[str]:
    return [n.label for n in node.walk()]


def test_lineage_up_from_a_bento_reaches_data_code_and_checks(reg: Registry) -> None:
    _build(reg)
    root = reg.lineage_up(bento="af_svc:1")
    assert root.kind == "bento"
    (model,) = [c for c in root.children if c.kind == "model"]
    assert model.attrs["name"] == "af" and model.attrs["version"] == 1
    kinds = {c.kind: c for c in model.children}
    assert set(kinds) == {"run", "dataset_version", "validation_run", "gate", "model"}
    assert kinds["run"].attrs["parameters"] == {"head": "linear"} and kinds["run"].attrs["code_version"]
    assert kinds["dataset_version"].attrs["dvc_md5"] == MD5_B
    assert kinds["gate"].attrs["verdict"] == "pass"
    fm2 = kinds["model"]
    assert fm2.attrs["version"] == 2
    fm1 = next(c for c in fm2.children if c.kind == "model")
    assert fm1.attrs["version"] == 1 and not any(c.kind == "model" for c in fm1.children)
    fm1_data = next(c for c in fm1.children if c.kind == "dataset_version")
    assert fm1_data.attrs["dvc_md5"] == MD5_A
    assert next(c for c in fm1.children if c.kind == "run").attrs["parameters"] == {"epochs": 10}
    assert "af@2" not in " ".join(_labels(root))


def test_lineage_down_from_a_dataset_version_reaches_every_model_and_bento(reg: Registry) -> None:
    _build(reg)
    down_a = reg.lineage_down(dataset_version=MD5_A)
    models = {n.attrs["name"] + "@" + str(n.attrs["version"]) for n in down_a.walk() if n.kind == "model"}
    assert models == {"fm@1", "fm@2", "af@1", "af@2"}
    assert [n.attrs["tag"] for n in down_a.walk() if n.kind == "bento"] == ["af_svc:1"]
    (fm1,) = down_a.children
    assert {c.label.split()[2] for c in fm1.children} == {"fm@2", "af@2"}
    down_b = reg.lineage_down(dataset_version=MD5_B)
    assert {n.attrs["name"] + str(n.attrs["version"]) for n in down_b.walk() if n.kind == "model"} == {
        "fm2",
        "af1",
    }
    assert reg.lineage_down(dataset_version="e" * 32).children == ()
    down_model = reg.lineage_down(model="fm@2")
    assert [n.kind for n in down_model.walk()] == ["model", "model", "bento"]


def test_cli_lineage_prints_a_tree_and_json(reg: Registry, db_url: str) -> None:
    _build(reg)
    runner = CliRunner()
    result = runner.invoke(registry_app, ["lineage", "af_svc:1", "--url", db_url])
    assert result.exit_code == 0, result.output
    assert "bento af_svc:1" in result.output and "dataset demo version aaaaaaaaaaaa" in result.output
    assert "└──" in result.output or "├──" in result.output
    result = runner.invoke(registry_app, ["lineage", "aaaa", "--json", "--url", db_url])
    assert result.exit_code == 0, result.output
    tree = json.loads(result.output)["down"]
    assert tree["kind"] == "dataset_version" and tree["children"][0]["attrs"]["name"] == "fm"
    result = runner.invoke(registry_app, ["lineage", "fm@2", "--json", "--url", db_url])
    assert set(json.loads(result.output)) == {"up", "down"}
    result = runner.invoke(registry_app, ["lineage", "af_svc:1", "--direction", "down", "--url", db_url])
    assert result.exit_code == 2 and "nothing built on it" in result.output
