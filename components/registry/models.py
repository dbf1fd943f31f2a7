"""The registry's ORM schema (SQLAlchemy 2.x typed declarative).

The Alembic migrations under ``migrations/versions`` create exactly this schema (a test compares them).
Rules that the database itself enforces live here as constraints:

* ``uq_stage_one_production_per_task``: a partial unique index, at most one production model per task;
* ``ck_stage_assignments_gate_passed_or_forced``: staging/production needs a passing gate decision of that
  same model (composite foreign key) or ``forced`` with a reason;
* composite foreign keys keep denormalised columns honest (a stage row's task is its model's task, a model's
  validation run validated the model's own dataset version);
* ``audit_log`` and ``steward_decisions`` are append-only (triggers created by the migration);
* monitoring runs and shadow reports name task models of their own task (composite foreign keys), a shadow
  report never compares a model with itself, and a monitoring window does not end before it starts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JSONType = JSON().with_variant(JSONB(), "postgresql")

MODEL_KINDS = ("foundation", "task")
STAGES = ("candidate", "staging", "production", "archived")
RUN_STATUSES = ("running", "succeeded", "failed")
VALIDATION_VERDICTS = ("pass", "warn", "fail")
GATE_VERDICTS = ("pass", "fail")
STEWARD_DECISIONS = ("accept", "reject")
MONITOR_STATUSES = ("ok", "breach", "insufficient")


def utcnow() -> datetime:
    """Timezone-aware now, the timestamp of every row."""
    return datetime.now(UTC)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    """Declarative base with a naming convention, so migrations name constraints predictably."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSONType,
        list[str]: JSONType,
        datetime: DateTime(timezone=True),
    }


class Dataset(Base):
    """A named stream of hospital drops (``demo``, ``ptbxl``, ...)."""

    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Run(Base):
    """One execution of a pipeline stage: what ran, with which parameters and code, where, how it ended."""

    __tablename__ = "runs"
    __table_args__ = (
        CheckConstraint(_in("status", RUN_STATUSES), name="status"),
        CheckConstraint(
            "(status = 'running' AND finished_at IS NULL) "
            "OR (status <> 'running' AND finished_at IS NOT NULL)",
            name="finished_iff_done",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(16))
    parameters: Mapped[dict[str, Any]]
    code_version: Mapped[str | None] = mapped_column(String(200))
    host: Mapped[str] = mapped_column(String(255))
    prefect_flow_run_id: Mapped[str | None] = mapped_column(String(64), index=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    started_by: Mapped[str] = mapped_column(String(200))


class DatasetVersion(Base):
    """One DVC-versioned state of a dataset, identified by the md5 of ``data.dvc``'s output."""

    __tablename__ = "dataset_versions"
    __table_args__ = (
        UniqueConstraint("dataset_id", "dvc_md5"),
        CheckConstraint("n_records >= 0 AND n_quarantined >= 0 AND n_patients >= 0", name="counts"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    dvc_md5: Mapped[str] = mapped_column(String(64), index=True)
    git_rev: Mapped[str | None] = mapped_column(String(64))
    n_records: Mapped[int] = mapped_column(Integer)
    n_quarantined: Mapped[int] = mapped_column(Integer)
    n_patients: Mapped[int] = mapped_column(Integer)
    statistics: Mapped[dict[str, Any]]
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("dataset_versions.id"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ValidationRun(Base):
    """A validation of one dataset version under a policy version, with its verdict and report."""

    __tablename__ = "validation_runs"
    __table_args__ = (
        CheckConstraint(_in("verdict", VALIDATION_VERDICTS), name="verdict"),
        UniqueConstraint("id", "dataset_version_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_version_id: Mapped[int] = mapped_column(ForeignKey("dataset_versions.id"), index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    policy_version: Mapped[str] = mapped_column(String(64))
    verdict: Mapped[str] = mapped_column(String(16))
    report_uri: Mapped[str] = mapped_column(Text)
    statistics: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Model(Base):
    """A trained model: foundation (pretrained encoders) or task (a head, fine-tuned from a foundation)."""

    __tablename__ = "models"
    __table_args__ = (
        UniqueConstraint("name", "version"),
        UniqueConstraint("id", "task"),
        CheckConstraint(_in("kind", MODEL_KINDS), name="kind"),
        CheckConstraint(
            "(kind = 'task' AND task IS NOT NULL) OR (kind = 'foundation' AND task IS NULL)",
            name="task_iff_task_model",
        ),
        CheckConstraint("length(sha256) = 64", name="sha256_length"),
        CheckConstraint("version >= 1", name="version_positive"),
        ForeignKeyConstraint(
            ["validation_run_id", "dataset_version_id"],
            ["validation_runs.id", "validation_runs.dataset_version_id"],
            name="fk_models_validation_run_same_dataset",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    task: Mapped[str | None] = mapped_column(String(100), index=True)
    artifact_uri: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    parent_model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id"), index=True)
    dataset_version_id: Mapped[int | None] = mapped_column(ForeignKey("dataset_versions.id"), index=True)
    validation_run_id: Mapped[int | None] = mapped_column(ForeignKey("validation_runs.id"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))


class Metric(Base):
    """One evaluation number of a model on a split and cohort, with its confidence interval."""

    __tablename__ = "metrics"
    __table_args__ = (
        UniqueConstraint("model_id", "split", "cohort", "name"),
        CheckConstraint("ci_low IS NULL OR ci_high IS NULL OR ci_low <= ci_high", name="ci_ordered"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    split: Mapped[str] = mapped_column(String(64))
    cohort: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(100))
    value: Mapped[float] = mapped_column(Float)
    ci_low: Mapped[float | None] = mapped_column(Float)
    ci_high: Mapped[float | None] = mapped_column(Float)
    n: Mapped[int | None] = mapped_column(Integer)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class GateDecision(Base):
    """The verdict of an evaluation gate policy on a model, with the reasons."""

    __tablename__ = "gate_decisions"
    __table_args__ = (
        CheckConstraint(_in("verdict", GATE_VERDICTS), name="verdict"),
        UniqueConstraint("id", "model_id", "verdict"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    policy: Mapped[str] = mapped_column(String(200))
    verdict: Mapped[str] = mapped_column(String(8))
    reasons: Mapped[list[str]]
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by: Mapped[str] = mapped_column(String(200))


class Bento(Base):
    """A built BentoML artifact serving one model."""

    __tablename__ = "bentos"
    __table_args__ = (CheckConstraint("length(sha256) = 64", name="sha256_length"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tag: Mapped[str] = mapped_column(String(200), unique=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    artifact_uri: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))


class StageAssignment(Base):
    """The current stage of a task model. History lives in the audit log."""

    __tablename__ = "stage_assignments"
    __table_args__ = (
        CheckConstraint(_in("stage", STAGES), name="stage"),
        CheckConstraint(
            "stage IN ('candidate', 'archived') OR COALESCE(gate_verdict, '') = 'pass' "
            "OR (forced AND COALESCE(reason, '') <> '')",
            name="gate_passed_or_forced",
        ),
        ForeignKeyConstraint(
            ["model_id", "task"], ["models.id", "models.task"], name="fk_stage_assignments_model_task"
        ),
        ForeignKeyConstraint(
            ["gate_decision_id", "model_id", "gate_verdict"],
            ["gate_decisions.id", "gate_decisions.model_id", "gate_decisions.verdict"],
            name="fk_stage_assignments_gate_of_model",
        ),
        Index(
            "uq_stage_one_production_per_task",
            "task",
            unique=True,
            sqlite_where=text("stage = 'production'"),
            postgresql_where=text("stage = 'production'"),
        ),
    )

    model_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    task: Mapped[str] = mapped_column(String(100))
    stage: Mapped[str] = mapped_column(String(16))
    gate_decision_id: Mapped[int | None] = mapped_column(Integer)
    gate_verdict: Mapped[str | None] = mapped_column(String(8))
    forced: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(Text)
    assigned_at: Mapped[datetime] = mapped_column(default=utcnow)
    assigned_by: Mapped[str] = mapped_column(String(200))


class AuditEntry(Base):
    """Append-only log: who did what to which entity, when and why."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_entity", "entity_type", "entity_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64), index=True)
    entity_type: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]]


class StewardDecision(Base):
    """A data steward's accept/reject of one quarantined or flagged record. Append-only; latest wins."""

    __tablename__ = "steward_decisions"
    __table_args__ = (
        CheckConstraint(_in("decision", STEWARD_DECISIONS), name="decision"),
        Index("ix_steward_decisions_record", "dataset_id", "record_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    record_id: Mapped[str] = mapped_column(String(200))
    decision: Mapped[str] = mapped_column(String(8))
    note: Mapped[str] = mapped_column(Text)
    reviewer: Mapped[str] = mapped_column(String(200))
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)


class MonitorRun(Base):
    """One drift check of a task's production model over a window of logged predictions."""

    __tablename__ = "monitor_runs"
    __table_args__ = (
        CheckConstraint(_in("status", MONITOR_STATUSES), name="status"),
        CheckConstraint("n_window >= 0 AND n_reference >= 0", name="counts"),
        CheckConstraint("window_start <= window_end", name="window_ordered"),
        ForeignKeyConstraint(
            ["model_id", "task"], ["models.id", "models.task"], name="fk_monitor_runs_model_task"
        ),
        Index("ix_monitor_runs_task_id", "task", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    task: Mapped[str] = mapped_column(String(100))
    model_id: Mapped[int] = mapped_column(Integer, index=True)
    policy: Mapped[str] = mapped_column(String(200))
    policy_version: Mapped[str] = mapped_column(String(64))
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    n_window: Mapped[int] = mapped_column(Integer)
    n_reference: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    summary: Mapped[dict[str, Any]]
    reasons: Mapped[list[str]]
    report_uri: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))


class ShadowReport(Base):
    """A candidate replayed beside the task's production model: per-label agreement and the verdict."""

    __tablename__ = "shadow_reports"
    __table_args__ = (
        CheckConstraint("n_records >= 0", name="n_records"),
        CheckConstraint(
            "production_model_id IS NULL OR production_model_id <> candidate_model_id", name="not_itself"
        ),
        ForeignKeyConstraint(
            ["candidate_model_id", "task"],
            ["models.id", "models.task"],
            name="fk_shadow_reports_candidate_task",
        ),
        ForeignKeyConstraint(
            ["production_model_id", "task"],
            ["models.id", "models.task"],
            name="fk_shadow_reports_production_task",
        ),
        Index("ix_shadow_reports_pair", "candidate_model_id", "production_model_id"),
        Index("ix_shadow_reports_task_id", "task", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    task: Mapped[str] = mapped_column(String(100))
    candidate_model_id: Mapped[int] = mapped_column(Integer)
    production_model_id: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(Text)
    n_records: Mapped[int] = mapped_column(Integer)
    agreement: Mapped[dict[str, Any]]
    metrics_delta: Mapped[dict[str, Any] | None]
    passed: Mapped[bool] = mapped_column(Boolean)
    reasons: Mapped[list[str]]
    report_uri: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))
