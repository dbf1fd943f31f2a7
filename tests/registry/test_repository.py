"""The repository API on both databases: datasets, validation, steward decisions, runs, models, artifacts."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from components.registry import (
    AmbiguousReferenceError,
    ArtifactMismatchError,
    InvalidArgumentError,
    MetricInfo,
    NotFoundError,
    Registry,
)

from .helpers import MD5_A, MD5_B, SHA, add_dataset


def test_dataset_versions_are_idempotent_newest_first_and_found_by_prefix(reg: Registry) -> None:
    add_dataset(reg, MD5_A)
    add_dataset(reg, MD5_A)
    add_dataset(reg, MD5_B, parent=MD5_A)
    add_dataset(reg, "ab" + "0" * 30, dataset="other")
    versions = reg.dataset_versions("demo")
    assert [v.dvc_md5 for v in versions] == [MD5_B, MD5_A]
    assert versions[0].parent_md5 == MD5_A and versions[0].statistics == {"mean_hr": 71.5}
    assert versions[0].created_at.tzinfo is not None
    assert reg.find_dataset_version("bbbb").dvc_md5 == MD5_B
    with pytest.raises(AmbiguousReferenceError, match="give more characters"):
        reg.find_dataset_version("a")
    with pytest.raises(NotFoundError):
        reg.find_dataset_version("ffff")
    with pytest.raises(NotFoundError, match="parent version"):
        add_dataset(reg, "c" * 32, parent="d" * 32)


def test_latest_validation_run(reg: Registry) -> None:
    add_dataset(reg)
    assert reg.latest_validation_run(MD5_A) is None
    reg.record_validation_run(MD5_A, policy_version="1", verdict="fail", report_uri="r1", statistics={})
    second = reg.record_validation_run(
        MD5_A, policy_version="2", verdict="pass", report_uri="r2", statistics={"n": 3}
    )
    latest = reg.latest_validation_run(MD5_A)
    assert (
        latest is not None
        and latest.id == second
        and latest.verdict == "pass"
        and latest.statistics == {"n": 3}
    )
    with pytest.raises(InvalidArgumentError, match="verdict"):
        reg.record_validation_run(MD5_A, policy_version="1", verdict="ok", report_uri="r", statistics={})


def test_steward_decisions_latest_wins(reg: Registry) -> None:
    reg.record_steward_decision(
        dataset="demo", record_id="r1", decision="reject", note="flat", reviewer="ann"
    )
    reg.record_steward_decision(dataset="demo", record_id="r2", decision="accept", note="", reviewer="ann")
    reg.record_steward_decision(
        dataset="demo", record_id="r1", decision="accept", note="fine", reviewer="bob"
    )
    decisions = reg.steward_decisions("demo")
    assert {k: (v.decision, v.reviewer) for k, v in decisions.items()} == {
        "r1": ("accept", "bob"),
        "r2": ("accept", "ann"),
    }
    assert reg.steward_decisions("elsewhere") == {}
    assert [e.actor for e in reg.audit(action="steward.decided")] == ["bob", "ann", "ann"]


def test_runs_record_parameters_timings_and_failures(reg: Registry) -> None:
    with reg.run("pretrain", parameters={"lr": 0.001}, prefect_flow_run_id="flow-1") as ok:
        pass
    with pytest.raises(RuntimeError), reg.run("finetune") as bad:
        raise RuntimeError("out of memory")
    done, failed = reg.get_run(ok), reg.get_run(bad)
    assert (done.status, done.parameters, done.prefect_flow_run_id) == ("succeeded", {"lr": 0.001}, "flow-1")
    assert done.duration_s is not None and done.duration_s >= 0 and done.host and done.code_version
    assert failed.status == "failed" and failed.error == "RuntimeError: out of memory"
    with pytest.raises(InvalidArgumentError, match="already finished"):
        reg.finish_run(ok)
    assert [r.id for r in reg.runs()] == [bad, ok]


def test_model_versions_parents_and_metrics(reg: Registry, artifact: tuple[Path, str]) -> None:
    path, digest = artifact
    add_dataset(reg)
    fm = reg.register_model("fm", kind="foundation", artifact_uri=str(path), dataset_version_md5=MD5_A)
    assert fm.sha256 == digest and fm.version == 1 and fm.stage is None and fm.dataset == "demo"
    t1 = reg.register_model("af", kind="task", task="af", artifact_uri=path.as_uri(), sha256=SHA, parent="fm")
    t2 = reg.register_model("af", kind="task", task="af", artifact_uri="x", sha256=SHA.upper(), parent=fm)
    assert (t1.version, t2.version, t2.parent, t2.stage, t2.sha256) == (1, 2, "fm@1", "candidate", SHA)
    assert reg.model("af").ref == "af@2" and reg.model("af@1").id == t1.id
    reg.record_metrics("af@1", [MetricInfo("test", "all", "auroc", 0.91, 0.88, 0.94, 500)])
    assert reg.metrics("af@1") == [MetricInfo("test", "all", "auroc", 0.91, 0.88, 0.94, 500)]
    assert [m.ref for m in reg.models(task="af")] == ["af@2", "af@1"]
    assert [m.ref for m in reg.models(kind="foundation")] == ["fm@1"]
    with pytest.raises(InvalidArgumentError, match="not finite"):
        reg.record_metrics(t1, [MetricInfo("test", "all", "auroc", float("nan"))])
    with pytest.raises(InvalidArgumentError, match="need a task"):
        reg.register_model("x", kind="task", artifact_uri="x", sha256=SHA)
    with pytest.raises(InvalidArgumentError, match="sha256"):
        reg.register_model("x", kind="foundation", artifact_uri="x", sha256="123")
    with pytest.raises(NotFoundError, match="no model 'nope@3'"):
        reg.model("nope@3")


def test_verify_artifact_names_both_hashes(reg: Registry, artifact: tuple[Path, str]) -> None:
    path, digest = artifact
    model = reg.register_model("af", kind="task", task="af", artifact_uri=str(path))
    assert reg.verify_artifact(model) == path
    path.write_bytes(b"tampered")
    actual = hashlib.sha256(b"tampered").hexdigest()
    with pytest.raises(ArtifactMismatchError) as info:
        reg.verify_artifact("af@1")
    assert digest in str(info.value) and actual in str(info.value)


def test_directory_artifacts_and_bentos(reg: Registry, tmp_path: Path) -> None:
    bento_dir = tmp_path / "bento"
    (bento_dir / "src").mkdir(parents=True)
    (bento_dir / "bento.yaml").write_text("service: svc")
    (bento_dir / "src" / "service.py").write_text("print(1)")
    model = reg.register_model("af", kind="task", task="af", artifact_uri="x", sha256=SHA)
    reg.record_gate_decision(model, policy="p", verdict="pass", reasons=[])
    bento = reg.register_bento("af_svc:v1", model=model, artifact_uri=str(bento_dir))
    assert reg.verify_bento("af_svc:v1") == bento_dir
    with pytest.raises(InvalidArgumentError, match="already registered"):
        reg.register_bento("af_svc:v1", model=model, artifact_uri="x", sha256=SHA)
    with pytest.raises(NotFoundError, match="no production model"):
        reg.bento_for("af")
    reg.promote(model, "production")
    assert reg.bento_for("af") == bento
    (bento_dir / "src" / "service.py").write_text("print(2)")
    with pytest.raises(ArtifactMismatchError, match=bento.sha256):
        reg.verify_bento("af_svc:v1")


def test_atomic_block_is_all_or_nothing(reg: Registry) -> None:
    with pytest.raises(RuntimeError), reg.atomic():
        model = reg.register_model("af", kind="task", task="af", artifact_uri="x", sha256=SHA)
        reg.register_bento("af_svc:v1", model=model, artifact_uri="x", sha256=SHA)
        raise RuntimeError("crash before commit")
    assert reg.models() == [] and reg.bentos() == [] and reg.audit() == []
