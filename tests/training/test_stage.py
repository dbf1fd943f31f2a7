"""The pretrain stage end to end: registry row and lineage, resume after a kill, DDP on CPU."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from components.config import Settings
from components.io.datasets import ingest_and_version
from components.models.checkpoint import foundation_meta
from components.registry import open_registry
from components.registry.artifacts import sha256_of
from components.runs.folder import RunDir
from components.runs.lifecycle import RunOptions
from components.training.errors import PretrainError
from components.training.params import PretrainParams
from components.training.stage import pretrain
from components.workspace import Workspace
from tests.conftest import QUIET
from tests.training.conftest import TINY, cli, cli_env

pytestmark = pytest.mark.slow


def _weights(model_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(model_dir / "model.safetensors"))


def test_pretrain_registers_model_with_dataset_version_and_lineage(
    workspace: Settings, samples_dir: Path
) -> None:
    (workspace.workspace / "params.yaml").write_text(
        yaml.safe_dump({"ingest": {"workers": 1}, "pretrain": TINY})
    )
    summary = ingest_and_version(Workspace(workspace), samples_dir, options=QUIET)
    md5 = summary.version["md5"] if summary.version else None
    assert md5

    result = pretrain(Workspace(workspace))
    assert result is not None and result.model_ref == "ecg-fm@1"
    assert result.dataset_version == md5 and result.epochs == TINY["max_epochs"]
    assert not list(result.model_dir.glob("*.pt*")) and not list(result.model_dir.glob("*.ckpt"))

    registry = open_registry(workspace.resolved_registry_url)
    model = registry.model("ecg-fm@1")
    assert model.kind == "foundation" and model.dataset_version_md5 == md5
    assert model.sha256 == sha256_of(result.model_dir) and Path(model.artifact_uri) == result.model_dir
    assert registry.verify_artifact("ecg-fm@1") == result.model_dir
    run = registry.get_run(model.run_id)  # type: ignore[arg-type]
    assert run.kind == "pretrain" and run.status == "succeeded"
    assert run.parameters["params"]["batch_size"] == TINY["batch_size"]
    # the recipe and the sha256 of its resolved configuration, with the run and in the artifact
    resolved = PretrainParams.model_validate(TINY)
    assert (run.parameters["recipe"], run.parameters["config_sha256"]) == ("ecgclip", resolved.config_sha256)
    assert {k: foundation_meta(result.model_dir)[k] for k in ("recipe", "config_sha256")} == {
        "recipe": "ecgclip",
        "config_sha256": resolved.config_sha256,
    }
    metrics = {m.name: m.value for m in registry.metrics("ecg-fm@1")}
    assert {
        "zero_shot_macro_auroc",
        "retrieval_recall@1",
        "retrieval_recall@10",
        "retrieval_chance@10",
    } <= set(metrics)
    assert 0.0 <= metrics["zero_shot_macro_auroc"] <= 1.0
    up = {(n.kind, n.id) for n in registry.lineage_up(model="ecg-fm@1").walk()}
    assert ("run", model.run_id) in up
    assert any(kind == "dataset_version" for kind, _ in up)
    down = [n for n in registry.lineage_down(dataset_version=md5).walk() if n.kind == "model"]
    assert [n.id for n in down] == [model.id]


def test_killed_run_resumes_to_the_same_model(tmp_path: Path, demo_store_root: Path) -> None:
    params = {**TINY, "max_epochs": 6}

    def workspace(name: str) -> Settings:
        root = tmp_path / name
        (root / "data").mkdir(parents=True)
        (root / "data" / "demo").symlink_to(demo_store_root)
        (root / "params.yaml").write_text(yaml.safe_dump({"pretrain": params}))
        return Settings(workspace=root, registry_url=f"sqlite:///{root}/r.db", patient_salt="x")  # type: ignore[arg-type]

    straight, killed = workspace("straight"), workspace("killed")
    reference = pretrain(Workspace(straight), "demo")
    assert reference is not None

    last = RunDir(Workspace(killed).pretrain_dir("demo")).last_checkpoint
    proc = subprocess.Popen(
        cli("--dataset", "demo", "--json"),
        # the same intra-op thread count as this process, so float reductions match bit for bit
        env=cli_env(killed) | {"OMP_NUM_THREADS": str(torch.get_num_threads())},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            torch.load(last, map_location="cpu", weights_only=False)
            break
        except (FileNotFoundError, RuntimeError, EOFError):
            time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    killed_at = torch.load(last, map_location="cpu", weights_only=False)["epoch"]
    assert killed_at < params["max_epochs"] - 1, "the run finished before it could be killed"
    registry = open_registry(killed.resolved_registry_url)
    assert registry.runs(kind="pretrain")[0].status == "running" and not registry.models()

    resumed = pretrain(Workspace(killed), "demo", RunOptions(resume=True))
    assert resumed is not None and resumed.resumed_from_epoch == killed_at
    assert resumed.epochs == reference.epochs == params["max_epochs"]
    assert resumed.steps == reference.steps
    expected, actual = _weights(reference.model_dir), _weights(resumed.model_dir)
    assert expected.keys() == actual.keys()
    for name in expected:
        assert torch.equal(expected[name], actual[name]), name
    assert registry.runs(kind="pretrain")[0].status == "succeeded"
    assert [m.ref for m in registry.models()] == ["ecg-fm@1"]

    # each attempt logs to its own version: the resumed one trained exactly the epochs after the checkpoint
    first, second = _epochs_with_train_loss(resumed.run_dir)
    assert set(first) <= set(range(killed_at + 1))
    assert second == list(range(killed_at + 1, params["max_epochs"]))


def _epochs_with_train_loss(run_dir: Path) -> list[list[int]]:
    """Per attempt (``logs/version_N``), the epochs whose epoch-level training loss was logged."""
    import pandas as pd

    out = []
    for attempt in sorted((run_dir / "logs").glob("version_*/metrics.csv")):
        frame = pd.read_csv(attempt)
        logged = frame.dropna(subset=["train/loss_epoch"]) if "train/loss_epoch" in frame else frame.iloc[:0]
        out.append(sorted(logged["epoch"].astype(int).tolist()))
    return out


def test_ddp_on_cpu_with_two_processes(train_workspace: Settings) -> None:
    out = subprocess.run(
        cli("--dataset", "demo", "--devices", "2", "--strategy", "ddp", "--accelerator", "cpu", "--json"),
        env=cli_env(train_workspace),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)  # only the first process prints
    params = PretrainParams.model_validate(TINY)
    batches = params.limit_train_records // params.batch_size  # type: ignore[operator]
    assert result["steps"] == params.max_epochs * batches // 2  # each process took half the batches
    assert result["model_ref"] == "ecg-fm@1"
    assert "gloo" in out.stderr.lower() or "distributed_backend=gloo" in out.stderr
    registry = open_registry(train_workspace.resolved_registry_url)
    assert len(registry.models()) == 1 and registry.runs(kind="pretrain")[0].status == "succeeded"


def test_resume_without_a_run_is_refused(train_workspace: Settings) -> None:
    with pytest.raises(PretrainError, match="no pretraining run"):
        pretrain(Workspace(train_workspace), "demo", RunOptions(resume=True))
