"""Packaging and pull: gate enforcement, audited overrides, labels, fsspec artifact stores, sha256 checks."""

from __future__ import annotations

import sqlite3
import sys
from contextlib import closing
from pathlib import Path

import bentoml
import fsspec
import pytest

from components.cli import main
from components.config import Settings, get_settings
from components.registry import ArtifactMismatchError, NotFoundError, open_registry
from components.serving.bentostore import bentoml_home
from components.serving.errors import PackagingError, PackagingRefusedError
from components.serving.family import family_members
from components.serving.package import PackageOptions, package
from components.serving.pull import pull
from components.workspace import Workspace
from tests.serving.conftest import LEAD_I_TASK, TASK, Packaged

pytestmark = pytest.mark.slow


def _candidate(settings: Settings, packaged: Packaged, name: str, verdict: str | None) -> str:
    """Another task model of ``packaged``'s task (the same weights) with a gate decision of ``verdict`` (or
    none)."""
    with open_registry(settings.resolved_registry_url) as registry:
        info = registry.register_model(
            name,
            kind="task",
            task=packaged.model.task,
            artifact_uri=packaged.model.artifact_uri,
            parent=packaged.model.parent,
            dataset_version_md5=packaged.model.dataset_version_md5,
        )
        if verdict is not None:
            registry.record_gate_decision(
                info.ref, policy="serving-test", verdict=verdict, reasons=["macro AUROC 0.61 < floor 0.80"]
            )
    return info.ref


def _cli_exit(settings: Settings, args: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    """Run ``ecgops ARGS`` in this process against ``settings``; its exit code."""
    monkeypatch.setenv("ECGOPS_WORKSPACE", str(settings.workspace))
    monkeypatch.setenv("ECGOPS_REGISTRY_URL", settings.resolved_registry_url)
    monkeypatch.setattr(sys, "argv", ["ecgops", *args])
    get_settings.cache_clear()
    try:
        with pytest.raises(SystemExit) as exited:
            main()
    finally:
        get_settings.cache_clear()
    return int(exited.value.code or 0)


def test_bento_labels_name_model_dataset_gate_and_code(
    serving_settings: Settings, twelve_lead: Packaged, build_home: Path
) -> None:
    with bentoml_home(build_home):
        bento = bentoml.bentos.get(twelve_lead.package.tag)
    labels = bento.info.labels
    assert labels["model"] == twelve_lead.model.ref and labels["model_version"] == "1"
    assert labels["dataset_version"] == twelve_lead.model.dataset_version_md5
    assert labels["gate_verdict"] == "pass" and labels["forced"] == "false" and labels["members"] == "none"
    assert len(labels["git_revision"]) >= 7
    models = {str(m.tag).split(":")[0] for m in bento.info.all_models}
    assert models == {"ecgops-ptbxl-superdiagnostic", "ecgops-ecg-fm"}
    assert (Path(bento.path) / "src" / "components" / "io" / "canonical.py").is_file()  # the code it serves
    with open_registry(serving_settings.resolved_registry_url) as registry:
        assert registry.verify_bento(twelve_lead.package.tag) == Path(twelve_lead.package.uri)
        assert registry.bento_for(TASK, "production").tag == twelve_lead.package.tag
        lineage = registry.lineage_up(bento=twelve_lead.package.tag)
    assert twelve_lead.model.ref in str(lineage)


def test_a_failed_or_missing_gate_blocks_packaging(
    serving_settings: Settings,
    twelve_lead: Packaged,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    failed = _candidate(serving_settings, twelve_lead, "superdiagnostic-failed", "fail")
    ungated = _candidate(serving_settings, twelve_lead, "superdiagnostic-ungated", None)
    with pytest.raises(
        PackagingRefusedError, match=r"failed gate serving-test: macro AUROC 0\.61 < floor 0\.80"
    ):
        package(Workspace(serving_settings), failed)
    with pytest.raises(PackagingRefusedError, match="has no gate decision"):
        package(Workspace(serving_settings), ungated)
    with pytest.raises(PackagingError, match="--force needs a --reason"):
        package(Workspace(serving_settings), failed, PackageOptions(force=True))
    with pytest.raises(PackagingError, match="--stage picks the models of the family's other tasks"):
        PackageOptions(stage="production")
    with pytest.raises(PackagingError, match="unknown stage 'prod'; the stages are candidate, staging"):
        PackageOptions(family=True, stage="prod")
    with pytest.raises(PackagingError, match="is a foundation model; only task models are packaged"):
        package(Workspace(serving_settings), twelve_lead.model.parent or "")
    with open_registry(serving_settings.resolved_registry_url) as registry:
        assert registry.bentos(model=failed) == [] and registry.bentos(model=ungated) == []
    assert _cli_exit(serving_settings, ["package", failed], monkeypatch) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: refusing to package superdiagnostic-failed@1")
    assert _cli_exit(serving_settings, ["package", failed, "--stage", "production"], monkeypatch) == 2
    assert (
        "--stage picks the models of the family's other tasks: it needs --family" in capsys.readouterr().err
    )


def test_a_family_takes_each_other_tasks_newest_gated_model(
    serving_settings: Settings, twelve_lead: Packaged, lead_i: Packaged
) -> None:
    newer = _candidate(serving_settings, lead_i, "superdiagnostic-lead-i-failed", "fail")
    with open_registry(serving_settings.resolved_registry_url) as registry:
        family = family_members(registry, twelve_lead.model)
        with pytest.raises(PackagingError, match=r"has a model in stage staging whose gate passed"):
            family_members(registry, twelve_lead.model, "staging")
        with pytest.raises(PackagingError, match=f"no task in schemas/tasks extends {LEAD_I_TASK}"):
            family_members(registry, lead_i.model)
    assert [m.model.ref for m in family.members] == [lead_i.model.ref] and newer != lead_i.model.ref
    assert family.members[0].gate is not None and family.members[0].gate.verdict == "pass"
    assert family.left_out == ("ptbxl-superdiagnostic-lead-ii", "ptbxl-superdiagnostic-limb")


def test_forced_packaging_is_labelled_and_audited(
    serving_settings: Settings, twelve_lead: Packaged, build_home: Path
) -> None:
    failed = _candidate(serving_settings, twelve_lead, "superdiagnostic-forced", "fail")
    with bentoml_home(build_home):
        result = package(
            Workspace(serving_settings),
            failed,
            PackageOptions(force=True, reason="clinical pilot, approved by the safety board"),
        )
        labels = bentoml.bentos.get(result.tag).info.labels
    assert result.forced and result.gate_verdict == "fail"
    assert labels["forced"] == "true" and labels["gate_verdict"] == "fail"
    with open_registry(serving_settings.resolved_registry_url) as registry:
        entries = registry.audit(action="bento.forced", entity_id=result.tag)
        assert registry.bento(result.tag).sha256 == result.sha256
    assert len(entries) == 1 and entries[0].reason == "clinical pilot, approved by the safety board"
    assert "failed gate serving-test" in entries[0].summary


def test_fsspec_artifact_store_round_trip_and_a_tampered_archive_is_refused(
    serving_settings: Settings, twelve_lead: Packaged, build_home: Path, tmp_path: Path
) -> None:
    # a copy of the session's registry: a second Bento of the production model stays out of the others' view
    registry_copy = tmp_path / "registry.db"
    with (
        closing(sqlite3.connect(serving_settings.resolved_registry_url.removeprefix("sqlite:///"))) as src,
        closing(sqlite3.connect(registry_copy)) as dst,
    ):
        src.backup(dst)
    remote = serving_settings.model_copy(
        update={"artifact_store": "memory://ecgops-artifacts", "registry_url": f"sqlite:///{registry_copy}"}
    )
    with bentoml_home(build_home):
        result = package(Workspace(remote), twelve_lead.model.ref)
    assert result.uri.startswith("memory://ecgops-artifacts/bentos/ecgops-ptbxl-superdiagnostic/")
    fs = fsspec.filesystem("memory")
    assert fs.exists(result.uri)
    home = tmp_path / "deploy-home"
    first = pull(Workspace(remote), result.tag, home=home)
    again = pull(Workspace(remote), result.tag, home=home)
    assert (first.replaced, again.replaced) == (False, True) and first.sha256 == result.sha256
    with bentoml_home(home):
        assert str(bentoml.bentos.get(result.tag).tag) == result.tag
    content = fs.cat_file(result.uri)
    fs.pipe_file(result.uri, content[:-1] + bytes([content[-1] ^ 1]))
    with pytest.raises(ArtifactMismatchError, match="registry recorded " + result.sha256):
        pull(Workspace(remote), result.tag, home=tmp_path / "other-home")
    assert not (tmp_path / "other-home" / "bentos" / "ecgops-ptbxl-superdiagnostic").exists()


def test_pull_names_what_is_missing(serving_settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no staging model for task 'ptbxl-superdiagnostic'"):
        pull(Workspace(serving_settings), f"{TASK}@staging", home=tmp_path)
    with pytest.raises(NotFoundError):
        pull(Workspace(serving_settings), "ecgops-ptbxl-superdiagnostic:no-such-version", home=tmp_path)
    with pytest.raises(PackagingError, match="is not TASK@STAGE"):
        pull(Workspace(serving_settings), "@production", home=tmp_path)
