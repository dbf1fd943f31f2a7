"""``ecgops shadow TASK --candidate MODEL``: the candidate and the production model on the same records.

The records are a drop, or the inputs of the production model's logged window found in the workspace's
stores (:mod:`components.monitoring.replay`). Per label: agreement, Cohen's kappa and flip rates of the
decisions; where the records carry the task's labels, the paired bootstrap of candidate − production
AUROC. The candidate's gate policy (``shadow:``) decides whether the report passes; the report goes to
the registry, where promotion to production looks for it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from components.evaluation.compute import BootstrapSettings, Predictions, compare
from components.evaluation.gates import ShadowPolicy, load_policy, shadow_verdict
from components.inference.models import DeployedModel, load_deployed
from components.inference.scoring import score_records
from components.metrics.agreement import label_agreement
from components.monitoring.errors import MonitoringError
from components.monitoring.replay import ReplayChunk, drop_chunks, store_chunks, stored_inputs
from components.registry import ShadowReportRecord
from components.tasks.labels import task_targets
from components.tasks.spec import load_task
from components.workspace import Workspace


class ShadowRequest(BaseModel):
    """Which candidate, against the task's production model, on which records."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    task: str
    candidate: str = Field(description="the candidate task model, name@version")
    drop: Path | None = Field(default=None, description="replay this drop (default: the logged window)")
    days: float = Field(default=7.0, gt=0, description="the logged window reaches this far back")
    until: datetime | None = None


@dataclass(frozen=True)
class ShadowOutcome:
    """The shadow report as recorded."""

    task: str
    candidate: str
    production: str
    source: str
    n_records: int
    n_missing: int
    agreement: list[dict[str, Any]]
    metrics_delta: dict[str, Any] | None
    passed: bool
    reasons: list[str]
    report: str
    shadow_report_id: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def shadow(workspace: Workspace, request: ShadowRequest) -> ShadowOutcome:
    """One shadow evaluation; see the module docstring."""
    with workspace.registry() as registry:
        production = load_deployed(registry, f"{request.task}@production")
        candidate = load_deployed(registry, request.candidate)
        gate = registry.latest_gate_decision(candidate.ref)
    _check_pair(request.task, production, candidate)
    source, missing, chunks = _source(workspace, request, production)
    meta, prod_proba = _scored(workspace, production, chunks(production))
    cand_meta, cand_proba = _scored(workspace, candidate, chunks(candidate))
    if list(meta["input_hash"]) != list(cand_meta["input_hash"]):
        raise MonitoringError("the two models were given different records; the replay is not paired")
    labels = list(production.model.cfg.labels)
    agreement = label_agreement(
        production.model.decide(prod_proba), candidate.model.decide(cand_proba), labels
    )
    policy = (load_policy(gate.policy).shadow if gate is not None else None) or ShadowPolicy()
    passed, reasons = shadow_verdict(policy, len(meta), agreement)
    delta = _metrics_delta(workspace, request.task, meta, (cand_proba, prod_proba), production.ref)
    at = datetime.now(UTC)
    out = workspace.state_dir / "shadow" / request.task / at.strftime("%Y%m%dT%H%M%SZ")
    outcome = ShadowOutcome(
        task=request.task,
        candidate=candidate.ref,
        production=production.ref,
        source=source,
        n_records=len(meta),
        n_missing=missing,
        agreement=[a.to_dict() for a in agreement],
        metrics_delta=delta,
        passed=passed,
        reasons=reasons,
        report=str(out / "shadow.json"),
        shadow_report_id=0,
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "shadow.json").write_text(json.dumps(outcome.to_dict(), indent=2, default=str))
    with workspace.registry() as registry:
        info = registry.record_shadow_report(_record(outcome, out))
    return ShadowOutcome(**(outcome.to_dict() | {"shadow_report_id": info.id}))


def _check_pair(task: str, production: DeployedModel, candidate: DeployedModel) -> None:
    if candidate.info.task != task:
        raise MonitoringError(f"{candidate.ref} is a model of task {candidate.info.task}, not {task}")
    if candidate.ref == production.ref:
        raise MonitoringError(f"{candidate.ref} is the production model of {task}: nothing to compare")
    if list(candidate.model.cfg.labels) != list(production.model.cfg.labels):
        raise MonitoringError(
            f"{candidate.ref} predicts {candidate.model.cfg.labels}, production {production.model.cfg.labels}"
        )


Chunks = Iterator[ReplayChunk]


def _source(workspace: Workspace, request: ShadowRequest, production: DeployedModel) -> tuple[str, int, Any]:
    """What is replayed, how many logged inputs were in no store, and the chunks at a model's rate."""
    params = workspace.params.predict
    if request.drop is not None:
        drop = request.drop
        if not drop.is_dir():
            raise FileNotFoundError(f"drop folder not found: {drop}")
        return f"drop:{drop.resolve()}", 0, lambda m: drop_chunks(drop, m.model.cfg.fs, params)
    until = request.until or datetime.now(UTC)
    since = until - timedelta(days=request.days)
    window = workspace.prediction_log().read(since=since, until=until, model=production.ref)
    match = stored_inputs(workspace, set(window.frame["input_hash"]) if len(window.frame) else set())
    source = f"log:{since:%Y-%m-%dT%H:%M}..{until:%Y-%m-%dT%H:%M}"
    return (
        source,
        match.missing,
        lambda m: store_chunks(workspace, match, m.model.cfg),
    )


def _scored(workspace: Workspace, deployed: DeployedModel, chunks: Chunks) -> tuple[pd.DataFrame, np.ndarray]:
    metas, probas = [], []
    for chunk in chunks:
        scores = score_records(
            deployed.model,
            chunk.signals,
            chunk.masks,
            chunk.n_valid,
            windows=workspace.params.windows,
            batch_size=workspace.params.predict.batch_size,
        )
        metas.append(chunk.meta)
        probas.append(scores.proba)
    if not metas:
        raise MonitoringError("no record to replay: the drop holds none, or no logged input is in a store")
    return pd.concat(metas, ignore_index=True), np.concatenate(probas)


def _metrics_delta(
    workspace: Workspace, task: str, meta: pd.DataFrame, proba: tuple[np.ndarray, np.ndarray], production: str
) -> dict[str, Any] | None:
    """Candidate − production AUROC (paired patient bootstrap) on the records with the task's labels."""
    spec = load_task(task)
    table = task_targets(meta, spec)
    if table.usable.sum() < 2:
        return None
    rows = np.flatnonzero(table.usable)
    p = workspace.params.evaluate
    pred = Predictions(
        record_ids=meta["input_hash"].to_numpy()[rows],
        patients=meta["patient"].astype(str).to_numpy()[rows],
        targets=table.targets[rows],
        proba=proba[0][rows],
        attributes=pd.DataFrame(index=range(len(rows))),
    )
    settings = BootstrapSettings(p.bootstrap_rounds, p.ci_level, p.seed, p.calibration_bins)
    labels = spec.label_names
    return compare(pred, proba[1][rows], production=production, labels=labels, settings=settings).to_dict()


def _record(outcome: ShadowOutcome, out: Path) -> ShadowReportRecord:
    return ShadowReportRecord(
        candidate=outcome.candidate,
        production=outcome.production,
        source=outcome.source,
        n_records=outcome.n_records,
        agreement={row["label"]: row for row in outcome.agreement},
        metrics_delta=outcome.metrics_delta,
        passed=outcome.passed,
        reasons=tuple(outcome.reasons),
        report_uri=(out / "shadow.json").resolve().as_uri(),
    )
