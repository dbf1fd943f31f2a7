"""The stages of ``dvc.yaml``: the same stage functions as the Prefect flow, with fixed output paths.

DVC needs each stage's outputs at paths it can hash and cache, so every stage also writes under
``pipeline/`` in the workspace: the training exclusions, a copy of each registered model artifact, the
evaluation reports, the exported Bentos, and metrics (JSON) and plots (CSV) for ``dvc metrics`` /
``dvc plots`` / ``dvc exp show``. The registry still records everything, as for ``ecgops run``.
Metrics files hold no timings or run ids, so a reproduction can be compared with the original.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

from components.errors import UserError
from components.workspace import Workspace

PIPELINE_DIR = "pipeline"


class PipelineError(UserError, RuntimeError):
    """A DVC stage cannot run as asked; the message says what to do."""


def pipeline_dir(workspace: Workspace) -> Path:
    return workspace.root / PIPELINE_DIR


def _write_json(path: Path, payload: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
    return path


def _replace_dir(source: Path, target: Path) -> Path:
    """``target`` becomes an exact copy of ``source``."""
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, target)
    return target


def register_checked_out_version(workspace: Workspace, dataset: str) -> str:
    """The dataset version ``data.dvc`` records, registered if this registry does not know it yet (a
    fresh clone): the stages' runs and models then name the data they came from."""
    from components.io.datasets import register_version
    from components.io.versioning import DataVersion, current_version, git_revision
    from components.registry import NotFoundError

    md5 = current_version(workspace)
    if md5 is None:
        raise PipelineError(f"{workspace.root} has no data.dvc: ingest a drop first (`ecgops ingest DROP`)")
    with workspace.registry() as registry:
        try:
            return registry.find_dataset_version(md5).dvc_md5
        except NotFoundError:
            pass
    version = DataVersion(md5, changed=False, remote="", git_rev=git_revision(workspace.root))
    register_version(workspace, dataset, version, None)
    return md5


def validate_stage(workspace: Workspace) -> dict[str, Any]:
    """Validate the checked-out dataset version; writes the training exclusions and the verdict."""
    from components.validation import excluded_records, validate

    dataset = workspace.default_dataset
    md5 = register_checked_out_version(workspace, dataset)
    result = validate(workspace, dataset, dataset_version_md5=md5)
    out = pipeline_dir(workspace)
    _write_json(out / "validation" / "excluded.json", sorted(excluded_records(workspace, dataset)))
    metrics = {
        "verdict": result.verdict,
        "records": result.n_records,
        "quarantined": result.n_quarantined,
        "rejected": result.n_rejected,
        "accepted": result.n_accepted,
        "failed": {s: [e.id for e in result.failed(s)] for s in ("block", "quarantine", "warn")},
    }
    _write_json(out / "metrics" / "validation.json", metrics)
    return result.to_dict()


def pretrain_stage(workspace: Workspace) -> dict[str, Any]:
    """Pretrain (devices from ``compute:``); the model goes to ``pipeline/foundation``."""
    from components.training.launch import pretrain_with

    dataset = workspace.default_dataset
    register_checked_out_version(workspace, dataset)
    result = pretrain_with(workspace, dataset)
    out = pipeline_dir(workspace)
    _replace_dir(Path(result["model_dir"]), out / "foundation")
    _write_json(out / "metrics" / "pretrain.json", result["evaluation"]["metrics"])
    _loss_curve(Path(result["run_dir"]), out / "plots" / "pretrain_loss.csv")
    return result


def _loss_curve(run_dir: Path, target: Path) -> None:
    """Per-epoch training and validation loss (the recipe's weighted objectives) from the Lightning CSV
    logs of every attempt."""
    logs = sorted((run_dir / "logs").glob("version_*/metrics.csv"), key=lambda p: int(p.parent.name[8:]))
    epochs: dict[int, dict[str, str]] = {}
    for log in logs:
        with log.open() as handle:
            for row in csv.DictReader(handle):
                entry = epochs.setdefault(int(row["epoch"]), {})
                for source, name in (("train/loss_epoch", "train_loss"), ("val/loss", "val_loss")):
                    if row.get(source):
                        entry[name] = row[source]
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["epoch", "train_loss", "val_loss"])
        writer.writeheader()
        for epoch in sorted(epochs):
            writer.writerow({"epoch": epoch, **epochs[epoch]})


def registered_ref(workspace: Workspace, directory: Path, stage: str) -> str:
    """The registry reference of the model whose artifact ``directory`` is a copy of."""
    from components.registry.artifacts import sha256_of

    if not directory.is_dir():
        raise PipelineError(f"{directory} is missing: run `dvc repro {stage}` first")
    digest = sha256_of(directory)
    with workspace.registry() as registry:
        for info in registry.models():
            if info.sha256 == digest:
                return info.ref
    raise PipelineError(
        f"the model in {directory} is not in the registry at {workspace.settings.resolved_registry_url}: "
        f"reproduce it here with `dvc repro --force {stage}`"
    )


def finetune_stage(workspace: Workspace) -> dict[str, Any]:
    """Fine-tune each of ``finetune.tasks`` from ``pipeline/foundation``; models to ``pipeline/models``."""
    from components.finetune.stage import FinetuneRequest, finetune

    out = pipeline_dir(workspace)
    foundation = registered_ref(workspace, out / "foundation", "pretrain")
    results: dict[str, Any] = {}
    shutil.rmtree(out / "models", ignore_errors=True)
    for task in workspace.params.finetune.tasks:
        result = finetune(workspace, FinetuneRequest(task, workspace.default_dataset, foundation))
        _replace_dir(result.model_dir, out / "models" / task)
        results[task] = result.to_dict()
    _write_json(out / "metrics" / "finetune.json", {t: r["val_metrics"] for t, r in results.items()})
    return results


def evaluate_stage(workspace: Workspace) -> dict[str, Any]:
    """Evaluate each model of ``pipeline/models`` (metrics, gate verdict); reports to ``pipeline/reports``."""
    from components.evaluation.stage import evaluate

    out = pipeline_dir(workspace)
    results: dict[str, Any] = {}
    shutil.rmtree(out / "reports", ignore_errors=True)
    for task in workspace.params.finetune.tasks:
        ref = registered_ref(workspace, out / "models" / task, "finetune")
        result = evaluate(workspace, ref)
        _replace_dir(result.report_dir, out / "reports" / task)
        results[task] = result.to_dict()
    metrics = {
        task: {"macro_auroc": r["macro_auroc"], "gate": r["verdict"], "reasons": r["reasons"]}
        for task, r in results.items()
    }
    _write_json(out / "metrics" / "evaluation.json", metrics)
    return results


def package_stage(workspace: Workspace) -> dict[str, Any]:
    """Package each model whose gate passed; Bentos to ``pipeline/bentos``, refusals recorded beside."""
    from components.serving.artifacts import fetch_file
    from components.serving.package import package

    out = pipeline_dir(workspace)
    shutil.rmtree(out / "bentos", ignore_errors=True)
    (out / "bentos").mkdir(parents=True)
    results: dict[str, Any] = {}
    for task in workspace.params.finetune.tasks:
        ref = registered_ref(workspace, out / "models" / task, "finetune")
        with workspace.registry() as registry:
            gate = registry.latest_gate_decision(ref)
        verdict = gate.verdict if gate else None
        results[task] = {"model": ref, "gate": verdict, "packaged": verdict == "pass"}
        if verdict == "pass":
            bento = package(workspace, ref)
            fetch_file(bento.uri, out / "bentos" / Path(bento.uri).name)
            results[task] |= {"tag": bento.tag, "uri": bento.uri, "sha256": bento.sha256}
        _write_json(
            out / "bentos" / f"{task}.json", {k: results[task][k] for k in ("model", "gate", "packaged")}
        )
    return results


STAGES = {
    "validate": validate_stage,
    "pretrain": pretrain_stage,
    "finetune": finetune_stage,
    "evaluate": evaluate_stage,
    "package": package_stage,
}
