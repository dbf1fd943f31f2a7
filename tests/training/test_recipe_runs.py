"""Every recipe through the real pretrain stage on real PTB-XL records (samples/), at a tiny budget: it
registers a foundation model that names its recipe (in the registry, its artifact and the dashboard's
model table), reports a linear probe (and zero-shot only with a text
space), loads back from safetensors and embeds, and a run that crashed after its first epoch resumes to
exactly the weights of an uninterrupted one."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

import components.training.stage as stage
from components.config import Settings
from components.dashboard.models import models_frame
from components.io.store import DatasetStore
from components.models.checkpoint import foundation_meta, load_foundation
from components.registry import open_registry
from components.runs.lifecycle import RunOptions
from components.training.errors import PretrainError
from components.training.params import PretrainParams
from components.training.recipes import recipe_names
from components.training.stage import pretrain
from components.workspace import Workspace
from tests.training.conftest import TINY, cli, cli_env

pytestmark = pytest.mark.slow

#: two steps an epoch, two epochs: enough for a resume to have something to continue; the encoder's size
#: (not its architecture: that is the recipe's)
BUDGET: dict[str, Any] = {
    **TINY,
    "limit_train_records": 32,
    "max_epochs": 2,
    "ecg": {"width": 16, "depth": 2},
}


class _Crash(L.Callback):
    """Fails the run as the second epoch starts, after the first epoch's checkpoint was written."""

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == 1:
            raise RuntimeError("injected crash")


def _workspace(root: Path, demo_store_root: Path, recipe: str) -> Settings:
    (root / "data").mkdir(parents=True)
    (root / "data" / "demo").symlink_to(demo_store_root)
    (root / "params.yaml").write_text(yaml.safe_dump({"pretrain": {**BUDGET, "recipe": recipe}}))
    return Settings(workspace=root, registry_url=f"sqlite:///{root}/r.db", patient_salt="x")  # type: ignore[arg-type]


@pytest.mark.parametrize("recipe", recipe_names())
def test_recipe_pretrains_registers_embeds_and_resumes_exactly(
    recipe: str, tmp_path: Path, demo_store_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    straight = _workspace(tmp_path / "straight", demo_store_root, recipe)
    result = pretrain(Workspace(straight), "demo", RunOptions(progress=False))
    assert result is not None and result.model_ref is not None
    params = PretrainParams.model_validate({**BUDGET, "recipe": recipe})
    meta = foundation_meta(result.model_dir)
    assert (meta["recipe"], meta["config_sha256"]) == (recipe, params.config_sha256)
    assert meta["data"] == result.data and meta["data"]["sampler"]["in_distribution"] == (recipe == "cape")
    registry = open_registry(straight.resolved_registry_url)
    assert registry.runs(kind="pretrain")[0].parameters["recipe"] == recipe
    assert models_frame(registry.models(kind="foundation"))["recipe"].tolist() == [recipe]  # the dashboard

    metrics = result.evaluation["metrics"]
    assert 0.0 <= metrics["probe_macro_auroc"] <= 1.0
    assert ("zero_shot_macro_auroc" in metrics) == params.objectives.uses_text
    model, tokenizer = load_foundation(result.model_dir)
    assert model.has_text_space == params.objectives.uses_text == (tokenizer is not None)
    signal = torch.from_numpy(DatasetStore.open(demo_store_root).read(np.array([0, 1])))
    embedding = model.embed_ecg(signal, torch.ones(2, 12, dtype=torch.bool))
    assert embedding.shape == (2, model.embedding_dim) and torch.allclose(
        embedding.norm(dim=1), torch.ones(2)
    )

    crashed = _workspace(tmp_path / "crashed", demo_store_root, recipe)
    real_trainer = stage.pretrain_trainer

    def crashing(*args: Any, **kwargs: Any) -> L.Trainer:
        trainer = real_trainer(*args, **kwargs)
        trainer.callbacks.insert(0, _Crash())
        return trainer

    monkeypatch.setattr(stage, "pretrain_trainer", crashing)
    with pytest.raises(RuntimeError, match="injected crash"):
        pretrain(Workspace(crashed), "demo", RunOptions(progress=False))
    monkeypatch.setattr(stage, "pretrain_trainer", real_trainer)
    resumed = pretrain(Workspace(crashed), "demo", RunOptions(resume=True, progress=False))
    assert resumed is not None and resumed.resumed_from_epoch == 0
    failed, successor = sorted(
        open_registry(crashed.resolved_registry_url).runs(kind="pretrain"), key=lambda r: r.id
    )
    assert (failed.status, successor.parameters["resumes_run"]) == ("failed", failed.id)
    assert successor.parameters["config_sha256"] == failed.parameters["config_sha256"] == params.config_sha256
    expected, actual = (
        load_file(str(result.model_dir / "model.safetensors")),
        load_file(str(resumed.model_dir / "model.safetensors")),
    )
    assert expected.keys() == actual.keys()
    for name in expected:
        assert torch.equal(expected[name], actual[name]), name


def test_a_drop_without_reports_pretrains_with_a_recipe_without_text(
    tmp_path: Path, demo_store_root: Path
) -> None:
    """CLIP needs reports; CAPE does not: the same store with every report and label removed."""
    import shutil

    import pandas as pd

    bare = tmp_path / "bare-store"
    shutil.copytree(demo_store_root, bare)
    manifest_path = bare / "manifest.parquet"
    manifest = pd.read_parquet(manifest_path)
    manifest["report"] = None
    manifest["labels"] = None
    manifest.to_parquet(manifest_path)
    settings = _workspace(tmp_path / "ws", bare, "ecgclip")
    with pytest.raises(PretrainError, match="no training reports"):
        pretrain(Workspace(settings), "demo", RunOptions(register=False, progress=False))
    cape = Workspace(settings).with_params(
        pretrain=PretrainParams.model_validate({**BUDGET, "recipe": "cape"})
    )
    result = pretrain(cape, "demo", RunOptions(register=False, progress=False))
    assert result is not None and "zero_shot_macro_auroc" not in result.evaluation["metrics"]


@pytest.mark.parametrize("recipe", ["cape"])
def test_recipe_trains_on_two_ddp_ranks(recipe: str, tmp_path: Path, demo_store_root: Path) -> None:
    """Two CPU processes (gloo): each takes half of every step's batches; CAPE's In-Distribution Batches
    plan every step's global batch from one group. CAPE only: its sampler is the one recipe-specific part
    of DDP (the other recipes share the trainer and sampler path tested here and in test_stage.py)."""
    settings = _workspace(tmp_path / "ws", demo_store_root, "ecgclip")  # --recipe picks the recipe
    ddp = ("--devices", "2", "--strategy", "ddp", "--accelerator", "cpu", "--max-epochs", "1")
    out = subprocess.run(
        cli("--dataset", "demo", "--recipe", recipe, *ddp, "--json"),
        env=cli_env(settings),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)
    assert "gloo" in out.stderr.lower() or "distributed_backend=gloo" in out.stderr
    assert result["steps"] == BUDGET["limit_train_records"] // (2 * BUDGET["batch_size"])
    plan = result["data"]["sampler"]
    assert (plan["world_size"], plan["global_batch_size"]) == (2, 2 * BUDGET["batch_size"])
    params = PretrainParams.model_validate({**BUDGET, "recipe": recipe})
    assert plan["in_distribution"] == params.sampler.in_distribution_batches
    assert foundation_meta(Path(result["model_dir"]))["recipe"] == recipe
