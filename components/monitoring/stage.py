"""``ecgops monitor TASK``: the production model's logged window against its reference, under a policy.

window (the prediction log, ``policy.window_days`` back, the production model's entries) + reference
(:mod:`components.monitoring.reference`) → :func:`~components.monitoring.drift.assess` → HTML report,
Prometheus gauges and ``assessment.json`` under ``.ecgops/monitoring/<task>/<time>/`` → a monitor run in
the registry (a breach is an audited event). Whether a breach starts retraining is the flow's to act on
(``policy.on_breach.retrain``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from components.inference.models import DeployedModel, load_deployed
from components.monitoring.drift import DriftAssessment, DriftInputs, assess
from components.monitoring.errors import MonitoringError
from components.monitoring.gauges import write_gauges
from components.monitoring.policy import MonitoringPolicy, load_policy
from components.monitoring.reference import Reference, reference_for
from components.monitoring.report import write_report
from components.registry import MonitorRunRecord
from components.workspace import Workspace


class MonitorRequest(BaseModel):
    """Which task's production model to monitor, under which policy, up to when."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    task: str
    stage: str = Field(default="production", description="the stage whose model is monitored")
    policy: str = Field(default="default", description="schemas/monitoring/<policy>.yaml, or a YAML path")
    until: datetime | None = Field(default=None, description="end of the window (default: now)")


@dataclass(frozen=True)
class MonitorOutcome:
    """What one monitoring run found and where it wrote it."""

    task: str
    model_ref: str
    policy: str
    status: str
    reasons: list[str]
    n_window: int
    n_reference: int
    report: str
    gauges: str
    monitor_run_id: int
    retrain: bool  # the policy asks for retraining after this breach

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def monitor(workspace: Workspace, request: MonitorRequest) -> MonitorOutcome:
    """One monitoring run; see the module docstring."""
    policy = load_policy(request.policy)
    until = request.until or datetime.now(UTC)
    since = until - timedelta(days=policy.window_days)
    with workspace.registry() as registry:
        deployed = load_deployed(registry, f"{request.task}@{request.stage}")
    log = workspace.prediction_log().read(since=since, until=until, model=deployed.ref)
    reference = reference_for(workspace, deployed, policy)
    inputs = _inputs(reference, log.frame, deployed)
    assessment = assess(inputs, policy)
    out = workspace.state_dir / "monitoring" / request.task / until.strftime("%Y%m%dT%H%M%SZ")
    reasons = assessment.reasons + [f"log part skipped: {p.path}: {p.reason}" for p in log.skipped]
    report = write_report(
        assessment,
        out,
        title=f"{request.task}: {deployed.ref}, {since:%Y-%m-%d %H:%M} – {until:%Y-%m-%d %H:%M} UTC",
        reference=inputs.reference_features,
        window=inputs.window_features,
        reference_embedding=inputs.reference_embedding,
        window_embedding=inputs.window_embedding,
    )
    gauges = out / "metrics.prom"
    write_gauges(assessment, gauges, task=request.task, model_ref=deployed.ref)
    summary = assessment.to_dict() | {"skipped_log_parts": [p.path for p in log.skipped]}
    (out / "assessment.json").write_text(json.dumps(summary, indent=2, default=str))
    run_id = _record(workspace, deployed, policy, assessment, (since, until), report)
    return MonitorOutcome(
        task=request.task,
        model_ref=deployed.ref,
        policy=f"{policy.name} v{policy.version}",
        status=assessment.status,
        reasons=reasons,
        n_window=assessment.n_window,
        n_reference=assessment.n_reference,
        report=str(report),
        gauges=str(gauges),
        monitor_run_id=run_id,
        retrain=assessment.status == "breach" and policy.on_breach.retrain,
    )


def _inputs(reference: Reference, frame: pd.DataFrame, deployed: DeployedModel) -> DriftInputs:
    """The reference and the logged window as the drift statistics take them."""
    labels = list(deployed.model.cfg.labels)
    quality = [c for c in frame.columns if c.startswith("quality.")]
    window = frame[quality].rename(columns=lambda c: c.removeprefix("quality.")).astype(float)
    for column in ("site", "device"):
        window[column] = frame[column].to_numpy() if column in frame else None
    width = reference.embedding.shape[1]
    if len(frame) and any(list(row) != labels for row in frame["labels"]):
        raise MonitoringError(f"log entries of {deployed.ref} name other labels than the model: {labels}")
    return DriftInputs(
        reference_features=reference.features,
        window_features=window.reset_index(drop=True),
        reference_embedding=reference.embedding,
        window_embedding=_stacked(frame, "embedding", width, float),
        reference_rates=reference.positive_rates,
        n_reference_decisions=len(reference),
        window_decisions=_stacked(frame, "decisions", len(labels), bool),
        labels=labels,
    )


def _stacked(frame: pd.DataFrame, column: str, width: int, dtype: type) -> np.ndarray:
    if not len(frame):
        return np.zeros((0, width), dtype=dtype)
    return np.stack([np.asarray(v, dtype=dtype) for v in frame[column]])


def _record(
    workspace: Workspace,
    deployed: DeployedModel,
    policy: MonitoringPolicy,
    assessment: DriftAssessment,
    window: tuple[datetime, datetime],
    report: Path,
) -> int:
    record = monitor_run_record(deployed.ref, policy, assessment, window, report)
    with workspace.registry() as registry:
        return registry.record_monitor_run(record).id


def monitor_run_record(
    model_ref: str,
    policy: MonitoringPolicy,
    assessment: DriftAssessment,
    window: tuple[datetime, datetime],
    report: Path,
) -> MonitorRunRecord:
    """What the registry keeps of one assessment of ``model_ref``'s logged ``window``."""
    return MonitorRunRecord(
        model=model_ref,
        policy=policy.name,
        policy_version=str(policy.version),
        window_start=window[0],
        window_end=window[1],
        n_window=assessment.n_window,
        n_reference=assessment.n_reference,
        status=assessment.status,
        summary=assessment.to_dict(),
        reasons=tuple(assessment.reasons),
        report_uri=report.resolve().as_uri(),
    )


def newest_drop(drops: Path) -> Path:
    """The newest drop under ``drops``: the last non-empty folder by name (name drops so that they sort by
    time, e.g. ``2026-12-07``; modification times change when folders are copied, names do not)."""
    if not drops.is_dir():
        raise FileNotFoundError(f"drops folder not found: {drops}")
    folders = sorted(
        p for p in drops.iterdir() if p.is_dir() and not p.name.startswith(".") and any(p.iterdir())
    )
    if not folders:
        raise MonitoringError(f"{drops} holds no drop folder to retrain on")
    return folders[-1]
