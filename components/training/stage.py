"""The pretrain stage: store → tokenizer → Lightning fit → safetensors model → evaluation → registry."""

from __future__ import annotations

import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from components.io.store import DatasetStore, manifest_sha256
from components.models.checkpoint import save_foundation
from components.models.config import FoundationConfig
from components.models.text import TextTokenizer
from components.models.tokenizer import ReportTokenizer
from components.runs.folder import PretrainRunState, RunDir
from components.runs.lifecycle import RunOptions, failure_recorded, registered_version, registering_run
from components.runs.trainer import TrainerSpec, build_trainer
from components.training.data import PretrainDataModule
from components.training.errors import PretrainError
from components.training.evaluate import evaluate
from components.training.module import PretrainModule
from components.training.params import PretrainParams
from components.training.reports import record_reports, training_patient_reports
from components.validation.review import validation_exclusions
from components.workspace import Workspace

if TYPE_CHECKING:
    from components.registry import MetricInfo, Registry

TOKENIZER_FILE = "tokenizer.json"


@dataclass
class PretrainResult:
    """What a pretraining run produced."""

    dataset: str
    dataset_version: str | None
    model_ref: str | None
    model_dir: Path
    run_dir: Path
    registry_run_id: int | None
    epochs: int
    steps: int
    train_records: int
    resumed_from_epoch: int | None
    elapsed_s: float
    evaluation: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return data | {"model_dir": str(self.model_dir), "run_dir": str(self.run_dir)}


def is_launched_worker() -> bool:
    """True in the processes Lightning's DDP launcher starts besides the first (they re-run the command)."""
    return int(os.environ.get("LOCAL_RANK", "0")) > 0 or int(os.environ.get("NODE_RANK", "0")) > 0


def build_tokenizer(store: DatasetStore, params: PretrainParams) -> ReportTokenizer:
    """Learn the report tokenizer from training-split reports (plus training-patient text, if configured)."""
    texts = [t for t in _training_texts(store, params) if t]
    if not texts:
        raise PretrainError(f"{store.root}: no training reports (and no labels to compose them from)")
    return ReportTokenizer.train(texts, params.text.vocab_size, params.text.max_tokens)


def _training_texts(store: DatasetStore, params: PretrainParams) -> list[str]:
    """Reports of training-split records, plus those of training-fold patients of ``extra_reports_csv``."""
    manifest = store.manifest
    texts = record_reports(manifest[manifest["split"] == "train"])
    if params.text.extra_reports_csv is not None:
        texts += training_patient_reports(params.text.extra_reports_csv, params.text.extra_train_folds)
    return texts


def pin_text_model(params: PretrainParams) -> PretrainParams:
    """For a Hugging Face report encoder, record its files' SHA-256 in ``text.revision`` (a set revision
    is checked when the model loads): a resumed run or a DDP process then uses exactly the same model."""
    if not params.objectives.uses_text or params.text.kind != "hf" or params.text.revision is not None:
        return params
    from components.models.text_hf import TextModelError, model_revision, resolve_model

    assert params.text.model is not None
    try:
        revision = model_revision(resolve_model(params.text.model))
    except TextModelError as exc:
        raise PretrainError(str(exc)) from exc
    return params.model_copy(update={"text": params.text.model_copy(update={"revision": revision})})


def foundation_config(
    store: DatasetStore, params: PretrainParams, tokenizer: ReportTokenizer | None
) -> FoundationConfig:
    """The architecture to train: the ECG encoder, the heads of the recipe's objectives and, for a recipe
    that learns a text space, the report encoder (a ``scratch`` one's vocabulary comes from
    ``tokenizer``)."""
    objectives = params.objectives
    text = params.text.architecture() if objectives.uses_text else None
    if text is not None and text.kind == "scratch":
        if tokenizer is None:
            raise ValueError("a scratch report encoder needs its tokenizer")
        text = text.model_copy(update={"vocab_size": tokenizer.vocab_size})
    return FoundationConfig(
        fs=store.info.fs,
        n_samples=store.info.n_samples,
        embed_dim=params.embed_dim,
        ecg=params.ecg,
        text=text,
        init_temperature=objectives.init_temperature,
        ecg_projection=max(objectives.ecg_ecg, objectives.cmsc, objectives.patient) > 0,
        reconstruction=objectives.masked_reconstruction > 0,
        masked_contrastive=objectives.wav2vec > 0,
        decoder=params.decoder if objectives.mae > 0 else None,
    )


def build_module(
    store: DatasetStore, params: PretrainParams, tokenizer: ReportTokenizer | None
) -> tuple[PretrainModule, TextTokenizer | None]:
    """The LightningModule and the report tokenizer that goes with its text encoder (``tokenizer`` for a
    ``scratch`` encoder, the model's own for a Hugging Face one, None without a text space)."""
    from components.models.text_hf import TextModelError

    config = foundation_config(store, params, tokenizer)
    try:
        module = PretrainModule(config.model_dump(mode="json"), params.model_dump(mode="json"))
    except TextModelError as exc:
        raise PretrainError(str(exc)) from exc
    if config.text is not None and config.text.kind == "hf":
        return module, module.model.text.tokenizer  # type: ignore[return-value]
    return module, tokenizer


def text_feature_cache(
    module: PretrainModule, workspace: Workspace
) -> Callable[[list[str]], np.ndarray] | None:
    """For a frozen Hugging Face report encoder: report texts → embeddings, each text embedded once and
    kept under ``.ecgops/text-embeddings/`` (keyed by model revision and token limit); else None."""
    text = module.cfg.text
    if text is None or text.kind != "hf" or not text.frozen:
        return None
    from components.models.text_cache import EmbeddingCache, cache_key
    from components.models.text_hf import HFTextEncoder

    assert text.revision is not None
    cache = EmbeddingCache(workspace.state_dir / "text-embeddings", cache_key(text.revision, text.max_tokens))
    encoder = module.model.text
    assert isinstance(encoder, HFTextEncoder)
    return lambda texts: cache.embed(texts, encoder.encode_texts)


def pretrain_trainer(
    params: PretrainParams, run_dir: Path, compute: TrainerSpec | None = None, **options: Any
) -> L.Trainer:
    """The pretraining Trainer: epoch checkpoints for resume and the stage's own per-epoch batch sampler
    (so no distributed sampler). ``compute`` gives accelerator, devices, strategy and progress; ``options``
    are further Trainer arguments (benchmarks: ``max_steps``, a profiler)."""
    compute = compute or TrainerSpec(run_dir=run_dir, max_epochs=params.max_epochs)
    checkpoints = (
        (ModelCheckpoint(dirpath=run_dir / "checkpoints", save_last=True, every_n_epochs=1),)
        if options.get("enable_checkpointing", True)
        else ()
    )
    return build_trainer(
        replace(
            compute,
            run_dir=run_dir,
            max_epochs=params.max_epochs,
            precision=params.precision,
            callbacks=(*checkpoints, *options.pop("callbacks", ())),
            options={"use_distributed_sampler": False, **options},
        )
    )


def pretrain(
    workspace: Workspace, dataset: str | None = None, options: RunOptions = RunOptions()
) -> PretrainResult | None:
    """Pretrain the signal-language foundation model on ``data/<dataset>`` (default: params.yaml's) with
    the workspace's ``pretrain:`` parameters, publish and register it.

    ``options.resume`` continues the dataset's last run from its last epoch checkpoint, with the run's own
    parameters (``options.max_epochs`` may extend it). Under DDP the processes Lightning launches besides
    the first train and return None; the first one exports, evaluates, registers and returns the result.
    """
    run = _open_run(workspace, dataset, options)
    params = run.params
    L.seed_everything(params.seed, workers=True, verbose=False)
    module, tokenizer = build_module(run.store, params, _scratch_tokenizer(run))
    data = _data_module(run, module, tokenizer)
    _check_enough_records(data, params.batch_size, options.devices if isinstance(options.devices, int) else 1)
    compute = TrainerSpec(
        run.folder.path,
        params.max_epochs,
        accelerator=options.accelerator,
        devices=options.devices,
        strategy=options.strategy,
        progress=options.progress,
    )
    trainer = pretrain_trainer(params, run.folder.path, compute)
    recorded = run.state.registry_run_id if options.register and not is_launched_worker() else None
    with failure_recorded(workspace, recorded):
        checkpoint = str(run.folder.last_checkpoint) if options.resume else None
        trainer.fit(module, datamodule=data, ckpt_path=checkpoint)
        if trainer.interrupted:
            raise PretrainError(f"pretraining was interrupted; continue it with --resume ({run.folder.path})")
        if not trainer.is_global_zero:
            return None
        return _publish(run, _Trained(module, tokenizer, trainer, data))


@dataclass(frozen=True)
class _Run:
    """One pretraining run as the stage trains it: its store, folder, ``run.json`` state and parameters."""

    workspace: Workspace
    store: DatasetStore
    folder: RunDir
    state: PretrainRunState
    params: PretrainParams
    options: RunOptions
    resumed_from: int | None
    started: float


@dataclass(frozen=True)
class _Trained:
    """What ``Trainer.fit`` left: the module, its tokenizer, the Trainer's counts and the data it saw."""

    module: PretrainModule
    tokenizer: TextTokenizer | None
    trainer: L.Trainer
    data: PretrainDataModule


def _open_run(workspace: Workspace, dataset: str | None, options: RunOptions) -> _Run:
    """The run to train: a resume (or a DDP worker) continues the dataset's last run with its own
    parameters; otherwise a fresh run with the workspace's."""
    started = time.perf_counter()
    params = workspace.params.pretrain
    store = workspace.store(workspace.dataset(dataset or params.dataset))
    folder = RunDir(workspace.pretrain_dir(store.root.name))
    if options.resume or is_launched_worker():
        state, params, resumed_from = _continued(folder, store.root.name, options.resume)
    else:
        params, resumed_from = pin_text_model(params), None
        state = _start(workspace, folder, store, params, options)
    params = options.epochs_of(params)
    return _Run(workspace, store, folder, state, params, options, resumed_from, started)


def _start(
    workspace: Workspace, folder: RunDir, store: DatasetStore, params: PretrainParams, options: RunOptions
) -> PretrainRunState:
    """Fresh run: clear the run folder, learn the tokenizer, open the registry run; returns run.json."""
    shutil.rmtree(folder.path, ignore_errors=True)
    folder.path.mkdir(parents=True)
    if _learns_a_tokenizer(params):
        (folder.path / TOKENIZER_FILE).write_text(build_tokenizer(store, params).to_json())
    state = PretrainRunState(
        dataset=store.root.name,
        params=params.model_dump(mode="json"),
        manifest_sha256=manifest_sha256(store.root),
        flow_run_id=options.flow_run_id,
    )
    if options.register:
        with workspace.registry() as registry:
            state.dataset_version = registered_version(workspace, registry)
            state.registry_run_id = registry.start_run(
                "pretrain",
                parameters=state.model_dump(exclude={"registry_run_id", "flow_run_id"}) | _provenance(params),
                prefect_flow_run_id=options.flow_run_id,
            )
    folder.save(state)
    return state


def _continued(
    run: RunDir, dataset: str, resume: bool
) -> tuple[PretrainRunState, PretrainParams, int | None]:
    """The state and parameters of the run a resume (or a DDP worker) continues, and the epoch it resumes
    after (None for a worker joining a fresh run)."""
    if not run.exists():
        raise PretrainError(f"no pretraining run of {dataset!r} to resume in {run.path}")
    state = run.load(PretrainRunState)
    params = PretrainParams.model_validate(state.params)
    if resume and not run.has_checkpoint():
        raise PretrainError(f"{run.path}: the run has no checkpoint yet; start it again without --resume")
    return state, params, run.resumed_epoch() if resume else None


def _scratch_tokenizer(run: _Run) -> ReportTokenizer | None:
    """The tokenizer a ``scratch`` report encoder learnt when the run started (None for a HF one, or
    without a text space)."""
    if not _learns_a_tokenizer(run.params):
        return None
    return ReportTokenizer.from_json(
        (run.folder.path / TOKENIZER_FILE).read_text(), run.params.text.max_tokens
    )


def _learns_a_tokenizer(params: PretrainParams) -> bool:
    """Whether the run learns its own report tokenizer: a ``scratch`` report encoder's text space."""
    return params.objectives.uses_text and params.text.kind == "scratch"


def _data_module(run: _Run, module: PretrainModule, tokenizer: TextTokenizer | None) -> PretrainDataModule:
    """Batches of the store's records, validation's exclusions left out, report features cached."""
    params, store = run.params, run.store
    return PretrainDataModule(
        store.root,
        params,
        tokenizer=tokenizer,
        excluded=validation_exclusions(run.workspace, store.root.name),
        text_features=text_feature_cache(module, run.workspace),
        text_pool=_training_texts(store, params) if params.objectives.text_text > 0 else None,
        cache_dir=run.workspace.state_dir / "rpeaks",
    )


def _check_enough_records(data: PretrainDataModule, batch_size: int, processes: int) -> None:
    """Refuse, with a message saying what to do, a store too small to train or evaluate on."""
    data.setup("fit")
    n_train, n_test = len(data.splits["train"]), len(data.splits["test"])
    if n_train < batch_size * processes:
        raise PretrainError(
            f"{n_train} usable training records are fewer than one batch of {batch_size} per process "
            f"({processes}); ingest more data or lower pretrain.batch_size"
        )
    if n_test == 0:
        raise PretrainError("the test split has no usable records: the model's evaluation needs some")


def _publish(run: _Run, trained: _Trained) -> PretrainResult:
    """Export safetensors + JSON, evaluate on the test split, register model and metrics (rank 0 only)."""
    params, state, trainer = trained.module.params, run.state, trained.trainer
    model = trained.module.model.to(torch.float32).cpu().eval()
    tag = (
        f"run-{state.registry_run_id}"
        if state.registry_run_id is not None
        else time.strftime("%Y%m%dT%H%M%S")
    )
    model_dir = Path(run.workspace.settings.resolved_artifact_store) / "models" / params.model_name / tag
    shutil.rmtree(model_dir, ignore_errors=True)
    meta = state.model_dump(include={"dataset", "dataset_version", "manifest_sha256", "registry_run_id"})
    data_report = trained.data.report()  # the batch plan, CAPE partners, R-peaks: kept with the model
    provenance = _provenance(PretrainParams.model_validate(state.params))  # as the run started
    meta |= {"epochs": trainer.current_epoch, **provenance, "data": data_report}
    save_foundation(model, trained.tokenizer, model_dir, extra=meta)
    evaluation = evaluate(model, trained.tokenizer, run.store, split="test", language=params.prompt_language)
    model_ref = None
    if run.options.register and state.registry_run_id is not None:
        from components.registry import MetricInfo

        metrics = [
            MetricInfo("test", "all", k, v, n=evaluation.n_records)
            for k, v in evaluation.metrics().items()
            if math.isfinite(v)
        ]
        with run.workspace.registry() as registry:
            model_ref = _record_model(registry, params, state, model_dir, metrics, provenance=provenance)
    return PretrainResult(
        dataset=run.store.root.name,
        dataset_version=state.dataset_version,
        model_ref=model_ref,
        model_dir=model_dir,
        run_dir=run.folder.path,
        registry_run_id=state.registry_run_id,
        epochs=trainer.current_epoch,
        steps=trainer.global_step,
        train_records=len(trained.data.splits["train"]),
        resumed_from_epoch=run.resumed_from,
        elapsed_s=round(time.perf_counter() - run.started, 2),
        evaluation=evaluation.to_dict(),
        data=data_report,
    )


def _provenance(params: PretrainParams) -> dict[str, Any]:
    """The recipe and the sha256 of its resolved configuration, recorded with the run and the model."""
    return {"recipe": params.recipe, "config_sha256": params.config_sha256}


def _record_model(
    registry: Registry,
    params: PretrainParams,
    state: PretrainRunState,
    model_dir: Path,
    metrics: list[MetricInfo],
    *,
    provenance: dict[str, Any],
) -> str:
    """Model row (artifact, sha256, dataset version, run) + test metrics; finishes the registry run."""
    run_id = registering_run(registry, "pretrain", state, provenance)
    validation = registry.latest_validation_run(state.dataset_version) if state.dataset_version else None
    with registry.atomic():
        info = registry.register_model(
            params.model_name,
            kind="foundation",
            artifact_uri=str(model_dir),
            dataset_version_md5=state.dataset_version,
            validation_run_id=validation.id if validation else None,
            run_id=run_id,
        )
        registry.record_metrics(info, metrics, run_id=run_id)
    registry.finish_run(run_id)
    return f"{info.name}@{info.version}"
