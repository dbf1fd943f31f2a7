"""The finetune stage on real records: lineage in the registry, the three modes, resume, clear refusals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch

from components.config import Settings
from components.finetune.errors import FinetuneError
from components.finetune.params import FinetuneParams
from components.finetune.stage import FinetuneRequest, FinetuneResult, finetune
from components.models.checkpoint import load_foundation
from components.models.task_model import load_task_model
from components.registry import open_registry
from components.runs.lifecycle import RunOptions
from components.workspace import Workspace
from tests.finetune.workspace import TASK, TINY_FINETUNE, run_cli

TINY = FinetuneParams.model_validate(TINY_FINETUNE)


def _finetune(
    settings: Settings, params: FinetuneParams = TINY, options: RunOptions = RunOptions(), **request: Any
) -> FinetuneResult:
    """The stage on ``TASK`` with ``params`` as the workspace's ``finetune:`` section."""
    workspace = Workspace(settings).with_params(finetune=params)
    return finetune(workspace, FinetuneRequest(TASK, **request), options)


def test_registered_task_model_carries_lineage_thresholds_and_provenance(ft_settings: Settings) -> None:
    options = RunOptions(max_epochs=2, flow_run_id="flow-run-42")
    result = _finetune(ft_settings, options=options, label_fraction=0.5)
    assert result.model_ref == "ptbxl-superdiagnostic@2"
    with open_registry(ft_settings.resolved_registry_url) as registry:
        info = registry.model(result.model_ref)
        run = registry.get_run(int(info.run_id or 0))
        foundation = registry.model("ecg-fm@1")
        val = {m.name: m for m in registry.metrics(result.model_ref) if m.split == "val"}
    assert (info.kind, info.task, info.parent, info.stage) == ("task", TASK, "ecg-fm@1", "candidate")
    assert info.dataset_version_md5 == foundation.dataset_version_md5 is not None
    assert info.validation_run_id == foundation.validation_run_id is not None
    assert run.kind == "finetune" and run.status == "succeeded" and run.prefect_flow_run_id == "flow-run-42"
    assert run.parameters["label_fraction"] == 0.5 and run.parameters["mode"] == "finetune"
    assert (
        Path(info.artifact_uri)
        == result.model_dir
        == ft_settings.state_dir / "artifacts/models" / TASK / "run-3"
    )

    model = load_task_model(result.model_dir)
    meta = model.cfg.meta
    assert len(model.cfg.thresholds) == 5 and all(0.0 < t < 1.0 for t in model.cfg.thresholds)
    assert [val[f"threshold_{lab}"].value for lab in model.cfg.labels] == pytest.approx(model.cfg.thresholds)
    assert val["macro_auroc"].value == pytest.approx(result.val_metrics["macro_auroc"])
    assert meta["foundation"] == "ecg-fm@1" and meta["label_fraction"] == 0.5
    assert meta["train_patients"] == result.train_patients < 271 and meta["val_records"] == result.val_records
    assert meta["task_spec"]["name"] == TASK and len(meta["test_records_sha256"]) == 64
    assert (result.run_dir / "checkpoints" / "last.ckpt").is_file()
    assert list((result.run_dir / "logs").rglob("metrics.csv"))


def _encoder_state(path: Path) -> dict[str, torch.Tensor]:
    return load_task_model(path).encoder.state_dict()


def test_linear_probe_keeps_the_foundation_encoder_and_finetune_changes_it(ft_settings: Settings) -> None:
    with open_registry(ft_settings.resolved_registry_url) as registry:
        foundation_dir = registry.verify_artifact("ecg-fm@1")
    reference = load_foundation(foundation_dir)[0].ecg.state_dict()
    unregistered = RunOptions(register=False)
    probe = _finetune(ft_settings, options=unregistered, mode="linear_probe", label_fraction=0.25)
    tuned = _finetune(ft_settings, options=unregistered, mode="finetune", label_fraction=0.25)
    probe_state, tuned_state = _encoder_state(probe.model_dir), _encoder_state(tuned.model_dir)
    assert all(torch.equal(probe_state[k], v) for k, v in reference.items())  # weights and BN statistics
    assert any(not torch.equal(tuned_state[k], v) for k, v in reference.items() if v.is_floating_point())
    assert load_task_model(probe.model_dir).cfg.mode == "linear_probe"


def test_scratch_needs_no_foundation_and_has_no_parent(ft_settings: Settings) -> None:
    result = _finetune(ft_settings, options=RunOptions(max_epochs=1), mode="scratch", label_fraction=0.25)
    with open_registry(ft_settings.resolved_registry_url) as registry:
        info = registry.model(str(result.model_ref))
    assert info.parent is None and result.foundation is None
    cfg = load_task_model(result.model_dir).cfg
    assert cfg.meta["architecture_from"] == "params" and cfg.mode == "scratch"
    assert (cfg.ecg.width, cfg.ecg.depth) == (16, 2)  # pretrain.ecg of the workspace's params.yaml


class _Crash(RuntimeError):
    """Stands for a crash in the middle of training."""


def test_crashed_run_resumes_to_the_weights_of_an_uninterrupted_one(
    ft_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = TINY.model_copy(update={"max_epochs": 3})
    whole = _finetune(ft_settings, params, RunOptions(register=False), label_fraction=0.25)
    shutil.rmtree(whole.run_dir)
    save = L.Trainer.save_checkpoint

    def save_then_crash(trainer: L.Trainer, filepath: Any, *args: Any, **kwargs: Any) -> None:
        """The run crashes right after it wrote its first ``last.ckpt``, at the same point every time."""
        save(trainer, filepath, *args, **kwargs)
        if Path(filepath).name == "last.ckpt":
            raise _Crash("simulated crash after the first checkpoint")

    with monkeypatch.context() as patched:
        patched.setattr(L.Trainer, "save_checkpoint", save_then_crash)
        with pytest.raises(_Crash):
            _finetune(ft_settings, params, RunOptions(register=False), label_fraction=0.25)
    resumed = _finetune(ft_settings, params, RunOptions(resume=True, register=False), label_fraction=0.25)
    assert resumed.resumed_from_epoch is not None and resumed.resumed_from_epoch < 2
    assert (resumed.epochs, resumed.steps, resumed.best_epoch) == (
        whole.epochs,
        whole.steps,
        whole.best_epoch,
    )
    a, b = load_task_model(whole.model_dir).state_dict(), load_task_model(resumed.model_dir).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.thresholds == whole.thresholds


def test_refusals_say_what_to_do(ft_settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(FinetuneError, match="is a task model; it must be a foundation model"):
        _finetune(ft_settings, from_model="ptbxl-superdiagnostic@1")
    with pytest.raises(FinetuneError, match="--label-fraction must be in"):
        _finetune(ft_settings, label_fraction=0.0)
    with pytest.raises(FinetuneError, match="no fine-tuning run to resume"):
        _finetune(ft_settings, options=RunOptions(resume=True), mode="linear_probe", label_fraction=0.3)
    empty = Settings(
        workspace=ft_settings.workspace, registry_url=f"sqlite:///{tmp_path}/empty.db", patient_salt="x"
    )  # type: ignore[arg-type]
    with pytest.raises(FinetuneError, match="no foundation model is registered: run `ecgops pretrain` first"):
        _finetune(empty)


def test_cli_finetune_json(ft_settings: Settings) -> None:
    code, out, err = run_cli(
        [
            "finetune",
            "--task",
            TASK,
            "--mode",
            "linear_probe",
            "--label-fraction",
            "0.25",
            "--max-epochs",
            "1",
            "--json",
        ],
        ft_settings,
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["model_ref"] == "ptbxl-superdiagnostic@2" and result["mode"] == "linear_probe"
    assert result["label_fraction"] == 0.25 and set(result["thresholds"]) == {
        "NORM",
        "MI",
        "STTC",
        "CD",
        "HYP",
    }
