"""The finetune stage: task + store + foundation → Lightning fit → thresholds → task model → registry."""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any
from uuid import uuid4

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from components.finetune.data import FinetuneDataModule, SplitData
from components.finetune.errors import FinetuneError
from components.finetune.foundation import FoundationChoice, resolve_foundation
from components.finetune.module import FinetuneModule
from components.finetune.params import FinetuneParams
from components.finetune.sampling import sample_fraction
from components.finetune.thresholds import tune_thresholds
from components.io.store import DatasetStore
from components.io.store_view import StoreView
from components.metrics.classification import auroc, macro
from components.models.checkpoint import foundation_meta, load_foundation
from components.models.task_model import TaskModelConfig, save_task_model
from components.runs.folder import FinetuneRunState, RunDir
from components.runs.lifecycle import RunOptions, failure_recorded, registered_version, registering_run
from components.runs.trainer import TrainerSpec, build_trainer
from components.tasks.labels import TaskRecords, records_digest, select_records, task_targets
from components.tasks.predict import predict_rows
from components.tasks.spec import TaskSpec, load_task, task_from_dict
from components.validation.review import validation_exclusions
from components.workspace import Workspace


@dataclass
class FinetuneResult:
    """What a fine-tuning run produced."""

    task: str
    mode: str
    label_fraction: float
    dataset: str
    dataset_version: str | None
    foundation: str | None
    model_ref: str | None
    model_dir: Path
    run_dir: Path
    registry_run_id: int | None
    epochs: int
    best_epoch: int | None
    steps: int
    train_records: int
    train_patients: int
    val_records: int
    train_positives: dict[str, int]
    thresholds: dict[str, float]
    val_metrics: dict[str, float]
    resumed_from_epoch: int | None
    elapsed_s: float
    excluded: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"model_dir": str(self.model_dir), "run_dir": str(self.run_dir)}


@dataclass
class _Data:
    store: DatasetStore
    splits: SplitData
    train_patients: int
    added_for_labels: dict[str, str]
    test_digest: str
    excluded: dict[str, dict[str, int]]


def _select(
    store: DatasetStore, spec: TaskSpec, params: FinetuneParams, fraction: float, excluded: frozenset[str]
) -> _Data:
    """Train (label fraction of the patients), validation and test records of the task."""
    manifest = store.manifest
    masks = store.lead_masks()
    table = task_targets(manifest, spec)
    parts = {
        split: select_records(manifest, masks, spec, split=split, excluded_ids=excluded, table=table)
        for split in ("train", "val", "test")
    }
    train = parts["train"]
    patients = manifest["patient_key"].to_numpy()[train.rows]
    sample = sample_fraction(
        patients,
        train.targets,
        fraction,
        seed=params.seed,
        labels=spec.label_names,
        ensure_positive_per_label=params.ensure_positive_per_label,
    )
    kept = TaskRecords("train", train.rows[sample.keep], train.targets[sample.keep], train.excluded)
    if len(kept) < 2:
        raise FinetuneError(
            f"task {spec.name}: {len(kept)} labelled training record(s) in {store.root} at label fraction "
            f"{fraction:g} (left out: {train.excluded or 'none'}); ingest more data or raise the fraction"
        )
    if len(parts["val"]) == 0:
        raise FinetuneError(
            f"task {spec.name}: no labelled validation records in {store.root} (left out: "
            f"{parts['val'].excluded or 'none'}); checkpoint selection and thresholds need some"
        )
    test_ids = manifest["record_id"].to_numpy()[parts["test"].rows]
    return _Data(
        store,
        SplitData(kept, parts["val"], masks),
        sample.n_patients,
        sample.added_for_labels,
        records_digest(test_ids),
        {split: part.excluded for split, part in parts.items()},
    )


@dataclass(frozen=True)
class FinetuneRequest:
    """What to fine-tune; a field left None takes the workspace's ``finetune:`` setting.

    ``from_model``: a foundation reference or directory (default: the newest registered foundation);
    ``mode``: ``linear_probe`` | ``finetune`` | ``scratch``; ``label_fraction``: share of the training
    patients (patient-level, seeded).
    """

    task: str
    dataset: str | None = None
    from_model: str | None = None
    mode: str | None = None
    label_fraction: float | None = None


def finetune(
    workspace: Workspace, request: FinetuneRequest, options: RunOptions = RunOptions()
) -> FinetuneResult:
    """Fine-tune a task model from a foundation model (or from scratch) on ``data/<dataset>``.

    The best validation epoch is kept, decision thresholds are tuned on the validation split, and the
    model is written as safetensors + JSON under ``<artifact store>/models/<task>/run-<id>`` and
    registered as a task model (parent: the foundation; dataset version and validation run of the data
    it trained on; ``options.flow_run_id`` on the run). ``options.resume`` continues the same (task,
    dataset, mode, fraction) run from its last checkpoint.
    """
    run = _open_run(workspace, request, options)
    with failure_recorded(workspace, run.state.registry_run_id if options.register else None):
        return _train(run)


@dataclass(frozen=True)
class _Run:
    """One fine-tuning run as the stage trains it: its folder, ``run.json`` state, task and parameters."""

    workspace: Workspace
    folder: RunDir
    state: FinetuneRunState
    spec: TaskSpec
    params: FinetuneParams
    options: RunOptions
    resumed_from: int | None
    started: float


def _open_run(workspace: Workspace, request: FinetuneRequest, options: RunOptions) -> _Run:
    """The run to train: a resume continues the run's own task and parameters; otherwise a fresh run."""
    started = time.perf_counter()
    params = workspace.params.finetune
    spec = load_task(request.task)
    request = replace(
        request,
        dataset=workspace.dataset(request.dataset or params.dataset),
        mode=request.mode or params.mode,
        label_fraction=params.label_fraction if request.label_fraction is None else request.label_fraction,
    )
    if request.mode not in ("linear_probe", "finetune", "scratch"):
        raise FinetuneError(f"unknown mode {request.mode!r}: use linear_probe, finetune or scratch")
    assert request.dataset is not None and request.label_fraction is not None
    if not 0.0 < request.label_fraction <= 1.0:
        raise FinetuneError(f"--label-fraction must be in (0, 1], got {request.label_fraction:g}")
    folder = RunDir(workspace.finetune_dir(spec.name, request.dataset, request.mode, request.label_fraction))
    resumed_from = None
    if options.resume:
        if not folder.has_checkpoint():
            raise FinetuneError(f"no fine-tuning run to resume in {folder.path}; start it without --resume")
        state = folder.load(FinetuneRunState)
        params, spec = FinetuneParams.model_validate(state.params), task_from_dict(state.task_spec)
        resumed_from = folder.resumed_epoch()
    else:
        state = _start(workspace, folder, spec, request, options)
    params = options.epochs_of(params)
    return _Run(workspace, folder, state, spec, params, options, resumed_from, started)


def _start(
    workspace: Workspace, folder: RunDir, spec: TaskSpec, request: FinetuneRequest, options: RunOptions
) -> FinetuneRunState:
    """Fresh run: choose the foundation, build the model config, open the registry run; returns run.json."""
    assert request.dataset is not None and request.mode is not None and request.label_fraction is not None
    scratch = request.mode == "scratch"
    foundation = (
        resolve_foundation(request.from_model, workspace.settings)
        if (not scratch or request.from_model)
        else None
    )
    if options.register and foundation is not None and foundation.ref is None and not scratch:
        raise FinetuneError(
            f"--from {foundation.path} is not a registered foundation model; "
            "register it, pass its registry reference, or use --no-register"
        )
    config = _model_config(workspace, spec, request, foundation)
    shutil.rmtree(folder.path, ignore_errors=True)
    folder.path.mkdir(parents=True)
    state = FinetuneRunState(
        task=spec.name,
        task_spec=spec.model_dump(mode="json"),
        dataset=request.dataset,
        mode=request.mode,
        label_fraction=request.label_fraction,
        params=workspace.params.finetune.model_dump(mode="json"),
        config=config.model_dump(mode="json"),
        foundation=foundation.ref if foundation and not scratch else None,
        foundation_path=str(foundation.path) if foundation and not scratch else None,
        architecture_from=str(foundation.ref or foundation.path) if foundation else "params",
        flow_run_id=options.flow_run_id,
    )
    if options.register:
        _open_registry_run(workspace, state, spec)
    folder.save(state)
    return state


def _model_config(
    workspace: Workspace, spec: TaskSpec, request: FinetuneRequest, foundation: FoundationChoice | None
) -> TaskModelConfig:
    """The task model's configuration: the foundation's encoder (refusing one of another rate or length),
    or for scratch training ``finetune.scratch_ecg`` (default: ``pretrain.ecg``) at the task's rate."""
    if foundation is not None:
        fcfg = foundation.config
        if spec.fs is not None and spec.fs != fcfg.fs:
            raise FinetuneError(
                f"task {spec.name} runs at {spec.fs} Hz but foundation {foundation.ref or foundation.path} "
                f"was pretrained at {fcfg.fs} Hz; pretrain at the task's rate or change the task's fs"
            )
        if spec.duration_s is not None and abs(spec.duration_s - fcfg.n_samples / fcfg.fs) > 1e-6:
            raise FinetuneError(
                f"task {spec.name} reads {spec.duration_s:g} s but foundation "
                f"{foundation.ref or foundation.path} reads {fcfg.n_samples / fcfg.fs:g} s"
            )
        ecg, fs, n_samples = fcfg.ecg, fcfg.fs, fcfg.n_samples
    else:
        info = workspace.store(request.dataset).info
        fs = spec.fs or info.fs
        ecg = workspace.params.finetune.scratch_ecg or workspace.params.pretrain.ecg
        n_samples = round((spec.duration_s or info.duration_s) * fs)
    return TaskModelConfig(
        task=spec.name,
        labels=spec.label_names,
        leads=spec.leads,
        required_leads=spec.required_leads,
        fs=fs,
        n_samples=n_samples,
        ecg=ecg,
        mode=request.mode,  # type: ignore[arg-type]
    )


def _open_registry_run(workspace: Workspace, state: FinetuneRunState, spec: TaskSpec) -> None:
    """Record the data version and its validation run on ``state`` and start its registry run."""
    recorded = {"task", "dataset", "dataset_version", "mode", "label_fraction", "foundation", "params"}
    with workspace.registry() as registry:
        state.dataset_version = registered_version(workspace, registry)
        if state.dataset_version is not None:
            validation = registry.latest_validation_run(state.dataset_version)
            state.validation_run_id = validation.id if validation else None
        state.registry_run_id = registry.start_run(
            "finetune",
            parameters=state.model_dump(include=recorded)
            | {"task_version": spec.version, "task_sha256": spec.digest()},
            prefect_flow_run_id=state.flow_run_id,
        )


@dataclass(frozen=True)
class _Fitted:
    """What training left: the model at its best epoch, and the Trainer's counts."""

    model: Any
    epochs: int
    steps: int
    best_epoch: int | None


@dataclass(frozen=True)
class _Tuned:
    """The decision thresholds tuned on the validation split, and the validation metrics."""

    choices: list[Any]
    val_metrics: dict[str, float]


def _train(run: _Run) -> FinetuneResult:
    """Select the records, train, tune thresholds on val, save and register the task model."""
    L.seed_everything(run.params.seed, workers=True, verbose=False)
    store = run.workspace.store(run.state.dataset)
    data = _training_data(run, store)
    config = TaskModelConfig.model_validate(run.state.config)
    view = StoreView(store.root, config.fs, config.n_samples)
    fitted = _fit(run, config, view, data)
    val = data.splits.val
    proba = predict_rows(fitted.model, view, val.rows, data.splits.lead_masks)
    choices = tune_thresholds(
        val.targets,
        proba,
        run.spec.label_names,
        rule=run.params.threshold_rule,
        target_sensitivity=run.params.target_sensitivity,
    )
    tuned = _Tuned(choices, _val_metrics(val.targets, proba, run.spec.label_names))
    model = fitted.model
    thresholds = [c.threshold for c in choices]
    model.cfg = model.cfg.model_copy(
        update={"thresholds": thresholds, "meta": _model_meta(run, data, tuned, fitted)}
    )
    model_dir = _save(run, model)
    model_ref = None
    if run.options.register and run.state.registry_run_id is not None:
        model_ref = _register(run, model_dir, tuned, len(val))
    return _result(run, data, fitted, tuned, (model_dir, model_ref))


def _training_data(run: _Run, store: DatasetStore) -> _Data:
    """The run's records; a resumed run refuses training records that changed since it started."""
    dataset = run.state.dataset
    excluded = validation_exclusions(run.workspace, dataset)
    data = _select(store, run.spec, run.params, float(run.state.label_fraction), excluded)
    digest = records_digest(store.manifest["record_id"].to_numpy()[data.splits.train.rows])
    if run.options.resume and run.state.train_records_sha256 not in (None, digest):
        raise FinetuneError(
            f"the training records of data/{dataset} changed since the run started in {run.folder.path}; "
            "start it again without --resume"
        )
    if not run.options.resume:
        run.state.train_records_sha256 = digest
        run.folder.save(run.state)
    return data


def _fit(run: _Run, config: TaskModelConfig, view: StoreView, data: _Data) -> _Fitted:
    """Train (or resume) with the best-on-val checkpoint kept; the model comes back at its best epoch."""
    params = run.params
    module = FinetuneModule(config.model_dump(mode="json"), params.model_dump(mode="json"))
    if not run.options.resume and run.state.foundation_path is not None:
        foundation, _ = load_foundation(Path(run.state.foundation_path))
        module.model.encoder.load_state_dict(foundation.ecg.state_dict())
    datamodule = FinetuneDataModule(
        view,
        data.splits,
        batch_size=params.batch_size,
        seed=params.seed,
        min_steps_per_epoch=params.min_steps_per_epoch,
        num_workers=params.num_workers,
    )
    checkpoint = ModelCheckpoint(
        dirpath=run.folder.path / "checkpoints",
        filename="best",
        monitor="val/selection",
        mode="max",
        save_top_k=1,
        save_last=True,
        enable_version_counter=False,
    )
    steps_per_epoch = max(len(data.splits.train) // datamodule.batch_size, params.min_steps_per_epoch)
    trainer = build_trainer(
        TrainerSpec(
            run.folder.path,
            params.max_epochs,
            precision=params.precision,
            accelerator=run.options.accelerator,
            callbacks=(checkpoint,),
            progress=run.options.progress,
            log_every_n_steps=max(1, min(10, steps_per_epoch)),
        )
    )
    last = str(run.folder.last_checkpoint) if run.options.resume else None
    trainer.fit(module, datamodule=datamodule, ckpt_path=last)
    if trainer.interrupted:
        raise FinetuneError(f"fine-tuning was interrupted; continue it with --resume ({run.folder.path})")
    best_epoch = None
    if checkpoint.best_model_path and Path(checkpoint.best_model_path).is_file():
        best = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=False)
        module.load_state_dict(best["state_dict"])
        best_epoch = int(best["epoch"])
    model = module.model.to(torch.float32).cpu().eval()
    return _Fitted(model, trainer.current_epoch, trainer.global_step, best_epoch)


def _val_metrics(targets: np.ndarray, proba: np.ndarray, labels: list[str]) -> dict[str, float]:
    per_label = {name: float(auroc(targets[:, j], proba[:, j])) for j, name in enumerate(labels)}
    metrics = {"macro_auroc": float(macro(np.array(list(per_label.values()))))}
    return metrics | {f"auroc_{name}": v for name, v in per_label.items()}


def _model_meta(run: _Run, data: _Data, tuned: _Tuned, fitted: _Fitted) -> dict[str, Any]:
    """What the saved task model says of itself: task, data, lineage, selection, thresholds, training."""
    state, spec, params = run.state, run.spec, run.params
    train, val = data.splits.train, data.splits.val
    pretrained = foundation_meta(Path(state.foundation_path)) if state.foundation_path else {}
    return {
        "foundation_recipe": pretrained.get("recipe"),
        "foundation_config_sha256": pretrained.get("config_sha256"),
        "task_version": spec.version,
        "task_sha256": spec.digest(),
        "task_spec": spec.model_dump(mode="json"),
        "foundation": state.foundation,
        "architecture_from": state.architecture_from,
        "dataset": state.dataset,
        "dataset_version": state.dataset_version,
        "validation_run_id": state.validation_run_id,
        "registry_run_id": state.registry_run_id,
        "flow_run_id": state.flow_run_id,
        "label_fraction": state.label_fraction,
        "fraction_seed": params.seed,
        "fraction_added_patients_for_labels": sorted(data.added_for_labels),
        "train_records": len(train),
        "train_patients": data.train_patients,
        "val_records": len(val),
        "train_positives": train.positives(spec.label_names),
        "val_positives": val.positives(spec.label_names),
        "excluded": data.excluded,
        "test_records_sha256": data.test_digest,
        "threshold_rule": params.threshold_rule,
        "threshold_notes": {c.label: c.note for c in tuned.choices if c.note},
        "val_metrics": {k: v for k, v in tuned.val_metrics.items() if math.isfinite(v)},
        "epochs": fitted.epochs,
        "best_epoch": fitted.best_epoch,
        "params": params.model_dump(mode="json"),
    }


def _save(run: _Run, model: Any) -> Path:
    """The task model's folder in the artifact store (``run-<registry run>``, else a unique name)."""
    run_id = run.state.registry_run_id
    tag = (
        f"run-{run_id}"
        if run_id is not None
        else f"unregistered-{time.strftime('%Y%m%dT%H%M%S')}-{uuid4().hex[:6]}"
    )
    model_dir = Path(run.workspace.settings.resolved_artifact_store) / "models" / run.spec.name / tag
    shutil.rmtree(model_dir, ignore_errors=True)
    save_task_model(model, model_dir)
    return model_dir


def _result(
    run: _Run, data: _Data, fitted: _Fitted, tuned: _Tuned, saved: tuple[Path, str | None]
) -> FinetuneResult:
    """What the run produced; ``saved``: the model's folder and registry reference."""
    state, train, val = run.state, data.splits.train, data.splits.val
    model_dir, model_ref = saved
    return FinetuneResult(
        task=run.spec.name,
        mode=state.mode,
        label_fraction=float(state.label_fraction),
        dataset=state.dataset,
        dataset_version=state.dataset_version,
        foundation=state.foundation,
        model_ref=model_ref,
        model_dir=model_dir,
        run_dir=run.folder.path,
        registry_run_id=state.registry_run_id,
        epochs=fitted.epochs,
        best_epoch=fitted.best_epoch,
        steps=fitted.steps,
        train_records=len(train),
        train_patients=data.train_patients,
        val_records=len(val),
        train_positives=train.positives(run.spec.label_names),
        thresholds={c.label: round(c.threshold, 6) for c in tuned.choices},
        val_metrics=tuned.val_metrics,
        resumed_from_epoch=run.resumed_from,
        elapsed_s=round(time.perf_counter() - run.started, 2),
        excluded=data.excluded,
    )


def _register(run: _Run, model_dir: Path, tuned: _Tuned, n_val: int) -> str:
    """Task model row (parent foundation, data version, validation run, run) + validation metrics and
    thresholds; finishes the registry run."""
    from components.registry import MetricInfo

    spec, state = run.spec, run.state
    metrics = [
        MetricInfo("val", "all", k, v, n=n_val) for k, v in tuned.val_metrics.items() if math.isfinite(v)
    ]
    metrics += [MetricInfo("val", "all", f"threshold_{c.label}", c.threshold, n=n_val) for c in tuned.choices]
    with run.workspace.registry() as registry:
        run_id = registering_run(registry, "finetune", state)
        with registry.atomic():
            info = registry.register_model(
                spec.name,
                kind="task",
                task=spec.name,
                artifact_uri=str(model_dir),
                parent=state.foundation,
                dataset_version_md5=state.dataset_version,
                validation_run_id=state.validation_run_id,
                run_id=run_id,
            )
            registry.record_metrics(info.ref, metrics, run_id=run_id)
        registry.finish_run(run_id)
    return info.ref
