"""Builders of dashboard workspaces from real records.

Fine-tuning, evaluation and packaging arrive in the registry through its API (``register_model``,
``record_metrics``, ``record_gate_decision``, ``register_bento``, ``promote``). Until those stages exist,
these builders make the same calls with values computed here on real data: a linear probe per model
version on real per-record features (validation's quality features, or the foundation model's
embeddings), test-split AUROCs with patient-free percentile bootstrap CIs, a floor gate over them, and a
zip of the model directory as the Bento artifact.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from components.config import Settings
from components.io.datasets import ingest_and_version
from components.io.store import DatasetStore
from components.metrics.bootstrap import bootstrap_ci
from components.metrics.classification import auroc, macro_auroc
from components.registry import MetricInfo, ModelInfo, Registry, open_registry
from components.training.probe import linear_probe
from components.training.reports import SUPERCLASSES, superdiagnostic_targets
from components.validation import validate
from components.workspace import Workspace
from tests.conftest import QUIET

TASK = "superdiagnostic"
GATE_POLICY = "superdiagnostic-floor@1"
MACRO_FLOOR = 0.55  # the gate: macro AUROC's lower 95 % CI bound at least this
CLASS_FLOOR = 0.7  # and every class AUROC at least this
LABEL_FRACTIONS = (0.25, 0.5, 1.0)  # one model version per fraction of the training labels
BOOTSTRAP_ROUNDS = 200
PROBE_WEIGHT_DECAYS = (1e-3, 1e-1)
PROBE_ITERATIONS = 50


def ptbxl_drop(samples: Path, target: Path, n_records: int | None) -> Path:
    """The first ``n_records`` sample records (all when None) in the PTB-XL layout."""
    table = pd.read_csv(samples / "ptbxl_database.csv")
    table = table[table["filename_lr"].map(lambda rel: (samples / f"{rel}.hea").is_file())]
    if n_records is not None:
        table = table.head(n_records)
    for rel in table["filename_lr"]:
        destination = target / rel
        destination.parent.mkdir(parents=True, exist_ok=True)
        for suffix in (".hea", ".dat"):
            shutil.copy(samples / f"{rel}{suffix}", destination.with_name(destination.name + suffix))
    table.to_csv(target / "ptbxl_database.csv", index=False)
    shutil.copy(samples / "scp_statements.csv", target / "scp_statements.csv")
    return target


def ingest_validate(settings: Settings, drop: Path, dataset: str = "demo") -> tuple[str, int]:
    """Ingest + DVC version + validate (recorded against the version); returns (md5, validation run id)."""
    summary = ingest_and_version(Workspace(settings), drop, dataset=dataset, options=QUIET)
    assert summary.version is not None
    md5 = str(summary.version["md5"])
    result = validate(Workspace(settings), dataset, dataset_version_md5=md5)
    assert result.validation_run_id is not None
    return md5, result.validation_run_id


@dataclass(frozen=True)
class TaskData:
    """Features, superdiagnostic targets and splits of the records of one store, in manifest order."""

    features: np.ndarray
    targets: np.ndarray
    split: np.ndarray


def quality_task_data(settings: Settings, validation_dir: Path, dataset: str = "demo") -> TaskData:
    """Validation's numeric per-record quality features as the probe's inputs."""
    manifest = DatasetStore.open(settings.data_dir / dataset).manifest.reset_index(drop=True)
    features = pd.read_parquet(validation_dir / "features.parquet").set_index("record_id")
    numeric = features.select_dtypes("number").astype(float).reindex(manifest["record_id"])
    matrix = np.nan_to_num(numeric.to_numpy(), nan=0.0, posinf=0.0, neginf=0.0)
    return TaskData(matrix, superdiagnostic_targets(manifest), manifest["split"].to_numpy())


def _metric(name: str, y: np.ndarray, score: np.ndarray, seed: int) -> MetricInfo:
    if y.ndim == 2:
        value = macro_auroc(y, score)
        low, high = bootstrap_ci(
            lambda i: macro_auroc(y[i], score[i]), len(y), rounds=BOOTSTRAP_ROUNDS, seed=seed
        )
    else:
        value = float(auroc(y, score))
        low, high = bootstrap_ci(
            lambda i: float(auroc(y[i], score[i])), len(y), rounds=BOOTSTRAP_ROUNDS, seed=seed
        )
    return MetricInfo("test", "all", name, value, min(low, value), max(high, value), n=len(y))


def gate(metrics: list[MetricInfo]) -> tuple[str, list[str]]:
    """The floor gate: verdict and every reason it failed."""
    reasons = []
    macro = next(m for m in metrics if m.name == "macro_auroc")
    assert macro.ci_low is not None
    if macro.ci_low < MACRO_FLOOR:
        reasons.append(f"macro_auroc lower CI bound {macro.ci_low:.3f} < floor {MACRO_FLOOR}")
    reasons += [
        f"{m.name} {m.value:.3f} < floor {CLASS_FLOOR}"
        for m in metrics
        if m.name.startswith("auroc_") and np.isfinite(m.value) and m.value < CLASS_FLOOR
    ]
    return ("fail" if reasons else "pass"), reasons


def register_probe_models(
    settings: Settings,
    data: TaskData,
    *,
    name: str,
    parent: str | None,
    dataset_version_md5: str,
    validation_run_id: int,
    override_reason: str | None = None,
) -> list[ModelInfo]:
    """One task model per label fraction: probe, metrics, gate, Bento; the best passing one goes to
    production, the next passing one to staging.

    When no model passes and ``override_reason`` is given, the best one is packaged and promoted to
    production anyway with ``force`` (the override is stored and audited, as ``--force --reason`` does).
    """
    train, val, test = (data.split == s for s in ("train", "val", "test"))
    rng = np.random.default_rng(0)
    train_idx = np.flatnonzero(train)
    registered: list[tuple[ModelInfo, float, str]] = []
    with open_registry(settings.resolved_registry_url) as reg:
        for k, fraction in enumerate(LABEL_FRACTIONS):
            chosen = np.sort(rng.permutation(train_idx)[: max(8, round(fraction * len(train_idx)))])
            probe = linear_probe(
                (data.features[chosen], data.targets[chosen]),
                (data.features[val], data.targets[val]),
                data.features[test],
                weight_decays=PROBE_WEIGHT_DECAYS,
                iterations=PROBE_ITERATIONS,
            )
            y = data.targets[test]
            metrics = [_metric("macro_auroc", y, probe.test_scores, seed=k)]
            metrics += [
                _metric(f"auroc_{c}", y[:, j], probe.test_scores[:, j], seed=k)
                for j, c in enumerate(SUPERCLASSES)
                if 0 < y[:, j].sum() < len(y)
            ]
            verdict, reasons = gate(metrics)
            model_dir = Path(settings.resolved_artifact_store) / "models" / name / f"fraction-{fraction}"
            model_dir.mkdir(parents=True, exist_ok=True)
            np.save(model_dir / "test_scores.npy", probe.test_scores)
            (model_dir / "probe.json").write_text(
                json.dumps(
                    {
                        "label_fraction": fraction,
                        "weight_decay": probe.weight_decay,
                        "train_records": len(chosen),
                    }
                )
            )
            (model_dir / "model_card.md").write_text(
                f"# {name} (label fraction {fraction})\n\nLinear probe for PTB-XL superdiagnostic classes "
                f"({', '.join(SUPERCLASSES)}).\n\n| metric | value | 95 % CI |\n| --- | --- | --- |\n"
                + "".join(f"| {m.name} | {m.value:.3f} | {m.ci_low:.3f}–{m.ci_high:.3f} |\n" for m in metrics)
            )
            with reg.run("finetune", parameters={"label_fraction": fraction, "task": TASK}) as run_id:
                model = reg.register_model(
                    name,
                    kind="task",
                    task=TASK,
                    artifact_uri=str(model_dir),
                    parent=parent,
                    dataset_version_md5=dataset_version_md5,
                    validation_run_id=validation_run_id,
                    run_id=run_id,
                )
            with reg.run("evaluate", parameters={"model": model.ref}) as run_id:
                reg.record_metrics(model.id, metrics, run_id=run_id)
                reg.record_gate_decision(
                    model.id, policy=GATE_POLICY, verdict=verdict, reasons=reasons, run_id=run_id
                )
            if verdict == "pass":
                _package(reg, model, model_dir, name)
            registered.append((reg.model(model.id), metrics[0].value, verdict))
        passing = sorted((r for r in registered if r[2] == "pass"), key=lambda r: -r[1])
        for (model, _, _), stage in zip(passing, ("production", "staging"), strict=False):
            reg.promote(model.id, stage, reason=f"dashboard test: {stage}")
        if not passing and override_reason:
            best = max(registered, key=lambda r: r[1])[0]
            _package(reg, best, Path(best.artifact_uri), name)
            reg.promote(best.id, "production", force=True, reason=override_reason)
        return [reg.model(m.id) for m, _, _ in registered]


def _package(reg: Registry, model: ModelInfo, model_dir: Path, name: str) -> None:
    """A zip of the model directory, registered as the model's Bento."""
    archive = shutil.make_archive(str(model_dir.parent / f"bento-{model.version}"), "zip", model_dir)
    reg.register_bento(f"ecgops-{TASK}:{name}-{model.version}", model=model.id, artifact_uri=archive)
