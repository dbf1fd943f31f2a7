"""Frozen, detached views of registry rows: what the public API returns (never live ORM objects)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored timestamp is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def to_jsonable(value: Any) -> Any:
    """A view (or anything holding views) as plain JSON-serialisable data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


@dataclass(frozen=True)
class DatasetVersionInfo:
    id: int
    dataset: str
    dvc_md5: str
    git_rev: str | None
    n_records: int
    n_quarantined: int
    n_patients: int
    statistics: dict[str, Any]
    parent_md5: str | None
    run_id: int | None
    created_at: datetime


@dataclass(frozen=True)
class ValidationRunInfo:
    id: int
    dataset: str
    dataset_version_md5: str
    policy_version: str
    verdict: str
    report_uri: str
    statistics: dict[str, Any]
    run_id: int | None
    created_at: datetime


@dataclass(frozen=True)
class RunInfo:
    id: int
    kind: str
    status: str
    parameters: dict[str, Any]
    code_version: str | None
    host: str
    prefect_flow_run_id: str | None
    started_at: datetime
    finished_at: datetime | None
    error: str | None
    started_by: str

    @property
    def duration_s(self) -> float | None:
        """Wall time of a finished run."""
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class ModelInfo:
    id: int
    name: str
    version: int
    kind: str
    task: str | None
    artifact_uri: str
    sha256: str
    parent: str | None
    parent_model_id: int | None
    dataset: str | None
    dataset_version_md5: str | None
    validation_run_id: int | None
    run_id: int | None
    stage: str | None
    gate_verdict: str | None
    created_at: datetime
    created_by: str

    @property
    def ref(self) -> str:
        """``name@version``, how the CLI names a model."""
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class MetricInfo:
    split: str
    cohort: str
    name: str
    value: float
    ci_low: float | None = None
    ci_high: float | None = None
    n: int | None = None


@dataclass(frozen=True)
class MetricPointInfo:
    """One metric of one model version, with the model it belongs to (a point of a metric's history)."""

    model_id: int
    model: str
    name: str
    version: int
    task: str | None
    stage: str | None
    created_at: datetime
    split: str
    cohort: str
    metric: str
    value: float
    ci_low: float | None
    ci_high: float | None
    n: int | None


@dataclass(frozen=True)
class GateDecisionInfo:
    id: int
    model: str
    policy: str
    verdict: str
    reasons: list[str]
    run_id: int | None
    decided_at: datetime
    decided_by: str


@dataclass(frozen=True)
class BentoInfo:
    id: int
    tag: str
    model: str
    model_id: int
    task: str | None
    artifact_uri: str
    sha256: str
    run_id: int | None
    created_at: datetime
    created_by: str


@dataclass(frozen=True)
class DeploymentSlotInfo:
    """A task's stage: its newest model (and how it got there), how many models the stage holds, and the
    Bento a pull would fetch."""

    task: str
    stage: str
    model: ModelInfo
    n_models: int
    bento: BentoInfo | None
    forced: bool = False
    stage_reason: str | None = None
    assigned_at: datetime | None = None
    assigned_by: str | None = None

    @property
    def pull_command(self) -> str:
        """The exact command a deployment team runs to fetch this Bento."""
        return f"ecgops bento pull {self.task}@{self.stage}"


@dataclass(frozen=True)
class StageChangeInfo:
    model: str
    task: str
    from_stage: str | None
    to_stage: str
    forced: bool
    reason: str | None
    actor: str
    demoted: tuple[str, ...] = ()


@dataclass(frozen=True)
class AuditEntryInfo:
    id: int
    at: datetime
    actor: str
    action: str
    entity_type: str
    entity_id: str
    summary: str
    reason: str | None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MonitorRunInfo:
    """One drift check of a task's production model: the window, the verdict and the assessment."""

    id: int
    task: str
    model: str
    model_id: int
    policy: str
    policy_version: str
    window_start: datetime
    window_end: datetime
    n_window: int
    n_reference: int
    status: str
    summary: dict[str, Any]
    reasons: list[str]
    report_uri: str | None
    created_at: datetime
    created_by: str


@dataclass(frozen=True)
class ShadowReportInfo:
    """A candidate replayed beside the production model (``None`` when the task had none) on ``source``."""

    id: int
    task: str
    candidate: str
    candidate_model_id: int
    production: str | None
    production_model_id: int | None
    source: str
    n_records: int
    agreement: dict[str, Any]
    metrics_delta: dict[str, Any] | None
    passed: bool
    reasons: list[str]
    report_uri: str | None
    created_at: datetime
    created_by: str


@dataclass(frozen=True)
class StewardDecisionInfo:
    id: int
    dataset: str
    record_id: str
    decision: str
    note: str
    reviewer: str
    decided_at: datetime


@dataclass(frozen=True)
class LineageNode:
    """One node of a lineage tree: ``kind`` is bento, model, dataset_version, validation_run, run or gate."""

    kind: str
    id: int
    label: str
    attrs: dict[str, Any]
    children: tuple[LineageNode, ...] = ()

    def walk(self) -> list[LineageNode]:
        """This node and all below it, depth first."""
        out = [self]
        for child in self.children:
            out.extend(child.walk())
        return out
