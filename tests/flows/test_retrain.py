"""The main job under real Prefect (its temporary local server): `ecgops run`, drop to foundation model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.config import Settings
from components.io.versioning import current_version
from components.registry import open_registry
from tests.conftest import SAMPLES, cli_env

TINY_PRETRAIN = {
    "batch_size": 16,
    "max_epochs": 1,
    "limit_train_records": 64,
    "embed_dim": 32,
    "warmup_steps": 2,
    "ecg": {"arch": "resnet", "width": 16, "depth": 2},
    "text": {"width": 32, "depth": 1, "heads": 2, "vocab_size": 300, "max_tokens": 32},
}


@pytest.mark.slow
def test_run_flow_end_to_end(workspace: Settings, tmp_path: Path) -> None:
    """samples/ through ingest → validate → version → pretrain (a tiny model) under real Prefect."""
    (workspace.workspace / "params.yaml").write_text(yaml.safe_dump({"pretrain": TINY_PRETRAIN}))
    env = cli_env(workspace, PREFECT_HOME=str(tmp_path / "prefect"))
    result = subprocess.run(
        [sys.executable, "-m", "components.cli", "run", "--drop", str(SAMPLES), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout)
    ingest, validation, version = outcome["ingest"], outcome["validation"], outcome["version"]
    assert (ingest["format"], ingest["ingested"], ingest["quarantined"]) == ("ptbxl", 393, 0)
    assert validation["verdict"] in {"pass", "warn"} and not validation["blocked"], validation["failed"]
    assert Path(validation["paths"]["summary_html"]).is_file()
    assert version["md5"] == current_version(workspace)
    with open_registry(workspace.resolved_registry_url) as registry:
        assert [v.dvc_md5 for v in registry.dataset_versions("demo")] == [version["md5"]]
        run = registry.latest_validation_run(version["md5"])
        model = registry.model(outcome["pretrain"]["model_ref"])
        pretrain_run = registry.get_run(outcome["pretrain"]["registry_run_id"])
    assert run is not None and run.verdict == validation["verdict"]
    assert model.kind == "foundation" and model.dataset_version_md5 == version["md5"]
    assert pretrain_run.prefect_flow_run_id, "the Prefect flow-run id is recorded next to the run"
    assert Path(outcome["pretrain"]["model_dir"], "model.safetensors").is_file()
    assert "Finished in state Completed" in result.stderr


@pytest.mark.slow
def test_blocking_validation_fails_the_run_and_versions_nothing(workspace: Settings, tmp_path: Path) -> None:
    """A drop whose records all fail to read leaves an empty store: the 'no records' block ends the run."""
    drop = tmp_path / "unreadable"
    drop.mkdir()
    (drop / "r1.hea").write_text("r1 1 100 1000\nr1.dat 16 200/mV 16 0 0 0 0 I\n")
    (drop / "r1.dat").write_bytes(b"\0" * 10)
    env = cli_env(workspace, PREFECT_HOME=str(tmp_path / "prefect"))
    result = subprocess.run(
        [sys.executable, "-m", "components.cli", "run", "--drop", str(drop)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    assert "failed blocking expectations" in result.stderr and "summary.html" in result.stderr
    assert current_version(workspace) is None
    with open_registry(workspace.resolved_registry_url) as registry:
        assert registry.dataset_versions() == []
