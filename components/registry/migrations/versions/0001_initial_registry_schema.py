"""initial registry schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22

All tables, constraints and indexes of the registry, plus the triggers that make ``audit_log`` and
``steward_decisions`` append-only on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
APPEND_ONLY_TABLES = ("audit_log", "steward_decisions")


def _create_append_only_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION ecgops_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$"
        )
        for table in APPEND_ONLY_TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION ecgops_append_only()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION ecgops_append_only()"
            )
        return
    for table in APPEND_ONLY_TABLES:
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )


def _drop_append_only_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in APPEND_ONLY_TABLES:
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER {table}_no_truncate ON {table}")
        op.execute("DROP FUNCTION ecgops_append_only()")
        return
    for table in APPEND_ONLY_TABLES:
        for event in ("update", "delete"):
            op.execute(f"DROP TRIGGER {table}_no_{event}")


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("entity_type", sa.String(length=32), nullable=False),
        sa.Column("entity_id", sa.String(length=200), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("details", JSON_TYPE, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_action"), "audit_log", ["action"], unique=False)
    op.create_index("ix_audit_log_entity", "audit_log", ["entity_type", "entity_id"], unique=False)
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_datasets")),
        sa.UniqueConstraint("name", name=op.f("uq_datasets_name")),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("parameters", JSON_TYPE, nullable=False),
        sa.Column("code_version", sa.String(length=200), nullable=True),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("prefect_flow_run_id", sa.String(length=64), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_by", sa.String(length=200), nullable=False),
        sa.CheckConstraint(
            "(status = 'running' AND finished_at IS NULL) "
            "OR (status <> 'running' AND finished_at IS NOT NULL)",
            name=op.f("ck_runs_finished_iff_done"),
        ),
        sa.CheckConstraint("status IN ('running', 'succeeded', 'failed')", name=op.f("ck_runs_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
    )
    op.create_index(op.f("ix_runs_kind"), "runs", ["kind"], unique=False)
    op.create_index(op.f("ix_runs_prefect_flow_run_id"), "runs", ["prefect_flow_run_id"], unique=False)
    op.create_table(
        "dataset_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("dvc_md5", sa.String(length=64), nullable=False),
        sa.Column("git_rev", sa.String(length=64), nullable=True),
        sa.Column("n_records", sa.Integer(), nullable=False),
        sa.Column("n_quarantined", sa.Integer(), nullable=False),
        sa.Column("n_patients", sa.Integer(), nullable=False),
        sa.Column("statistics", JSON_TYPE, nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "n_records >= 0 AND n_quarantined >= 0 AND n_patients >= 0",
            name=op.f("ck_dataset_versions_counts"),
        ),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_dataset_versions_dataset_id_datasets")
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["dataset_versions.id"],
            name=op.f("fk_dataset_versions_parent_id_dataset_versions"),
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_dataset_versions_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_versions")),
        sa.UniqueConstraint("dataset_id", "dvc_md5", name=op.f("uq_dataset_versions_dataset_id_dvc_md5")),
    )
    op.create_index(op.f("ix_dataset_versions_dvc_md5"), "dataset_versions", ["dvc_md5"], unique=False)
    op.create_table(
        "steward_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.String(length=200), nullable=False),
        sa.Column("decision", sa.String(length=8), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("reviewer", sa.String(length=200), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("decision IN ('accept', 'reject')", name=op.f("ck_steward_decisions_decision")),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_steward_decisions_dataset_id_datasets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_steward_decisions")),
    )
    op.create_index(
        "ix_steward_decisions_record", "steward_decisions", ["dataset_id", "record_id"], unique=False
    )
    op.create_table(
        "validation_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_version_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("policy_version", sa.String(length=64), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("report_uri", sa.Text(), nullable=False),
        sa.Column("statistics", JSON_TYPE, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("verdict IN ('pass', 'warn', 'fail')", name=op.f("ck_validation_runs_verdict")),
        sa.ForeignKeyConstraint(
            ["dataset_version_id"],
            ["dataset_versions.id"],
            name=op.f("fk_validation_runs_dataset_version_id_dataset_versions"),
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_validation_runs_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_validation_runs")),
        sa.UniqueConstraint(
            "id", "dataset_version_id", name=op.f("uq_validation_runs_id_dataset_version_id")
        ),
    )
    op.create_index(
        op.f("ix_validation_runs_dataset_version_id"), "validation_runs", ["dataset_version_id"], unique=False
    )
    op.create_table(
        "models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("task", sa.String(length=100), nullable=True),
        sa.Column("artifact_uri", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("parent_model_id", sa.Integer(), nullable=True),
        sa.Column("dataset_version_id", sa.Integer(), nullable=True),
        sa.Column("validation_run_id", sa.Integer(), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.CheckConstraint(
            "(kind = 'task' AND task IS NOT NULL) OR (kind = 'foundation' AND task IS NULL)",
            name=op.f("ck_models_task_iff_task_model"),
        ),
        sa.CheckConstraint("kind IN ('foundation', 'task')", name=op.f("ck_models_kind")),
        sa.CheckConstraint("length(sha256) = 64", name=op.f("ck_models_sha256_length")),
        sa.CheckConstraint("version >= 1", name=op.f("ck_models_version_positive")),
        sa.ForeignKeyConstraint(
            ["dataset_version_id"],
            ["dataset_versions.id"],
            name=op.f("fk_models_dataset_version_id_dataset_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["parent_model_id"], ["models.id"], name=op.f("fk_models_parent_model_id_models")
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_models_run_id_runs")),
        sa.ForeignKeyConstraint(
            ["validation_run_id", "dataset_version_id"],
            ["validation_runs.id", "validation_runs.dataset_version_id"],
            name="fk_models_validation_run_same_dataset",
        ),
        sa.ForeignKeyConstraint(
            ["validation_run_id"],
            ["validation_runs.id"],
            name=op.f("fk_models_validation_run_id_validation_runs"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_models")),
        sa.UniqueConstraint("id", "task", name=op.f("uq_models_id_task")),
        sa.UniqueConstraint("name", "version", name=op.f("uq_models_name_version")),
    )
    op.create_index(op.f("ix_models_dataset_version_id"), "models", ["dataset_version_id"], unique=False)
    op.create_index(op.f("ix_models_parent_model_id"), "models", ["parent_model_id"], unique=False)
    op.create_index(op.f("ix_models_task"), "models", ["task"], unique=False)
    op.create_table(
        "bentos",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=200), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("artifact_uri", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.CheckConstraint("length(sha256) = 64", name=op.f("ck_bentos_sha256_length")),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], name=op.f("fk_bentos_model_id_models")),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_bentos_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bentos")),
        sa.UniqueConstraint("tag", name=op.f("uq_bentos_tag")),
    )
    op.create_index(op.f("ix_bentos_model_id"), "bentos", ["model_id"], unique=False)
    op.create_table(
        "gate_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("policy", sa.String(length=200), nullable=False),
        sa.Column("verdict", sa.String(length=8), nullable=False),
        sa.Column("reasons", JSON_TYPE, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=200), nullable=False),
        sa.CheckConstraint("verdict IN ('pass', 'fail')", name=op.f("ck_gate_decisions_verdict")),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], name=op.f("fk_gate_decisions_model_id_models")),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_gate_decisions_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gate_decisions")),
        sa.UniqueConstraint("id", "model_id", "verdict", name=op.f("uq_gate_decisions_id_model_id_verdict")),
    )
    op.create_index(op.f("ix_gate_decisions_model_id"), "gate_decisions", ["model_id"], unique=False)
    op.create_table(
        "metrics",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("split", sa.String(length=64), nullable=False),
        sa.Column("cohort", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("ci_low", sa.Float(), nullable=True),
        sa.Column("ci_high", sa.Float(), nullable=True),
        sa.Column("n", sa.Integer(), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "ci_low IS NULL OR ci_high IS NULL OR ci_low <= ci_high", name=op.f("ck_metrics_ci_ordered")
        ),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], name=op.f("fk_metrics_model_id_models")),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_metrics_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metrics")),
        sa.UniqueConstraint(
            "model_id", "split", "cohort", "name", name=op.f("uq_metrics_model_id_split_cohort_name")
        ),
    )
    op.create_table(
        "stage_assignments",
        sa.Column("model_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("task", sa.String(length=100), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("gate_decision_id", sa.Integer(), nullable=True),
        sa.Column("gate_verdict", sa.String(length=8), nullable=True),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("assigned_by", sa.String(length=200), nullable=False),
        sa.CheckConstraint(
            "stage IN ('candidate', 'archived') OR COALESCE(gate_verdict, '') = 'pass' "
            "OR (forced AND COALESCE(reason, '') <> '')",
            name=op.f("ck_stage_assignments_gate_passed_or_forced"),
        ),
        sa.CheckConstraint(
            "stage IN ('candidate', 'staging', 'production', 'archived')",
            name=op.f("ck_stage_assignments_stage"),
        ),
        sa.ForeignKeyConstraint(
            ["gate_decision_id", "model_id", "gate_verdict"],
            ["gate_decisions.id", "gate_decisions.model_id", "gate_decisions.verdict"],
            name="fk_stage_assignments_gate_of_model",
        ),
        sa.ForeignKeyConstraint(
            ["model_id", "task"], ["models.id", "models.task"], name="fk_stage_assignments_model_task"
        ),
        sa.PrimaryKeyConstraint("model_id", name=op.f("pk_stage_assignments")),
    )
    op.create_index(
        "uq_stage_one_production_per_task",
        "stage_assignments",
        ["task"],
        unique=True,
        sqlite_where=sa.text("stage = 'production'"),
        postgresql_where=sa.text("stage = 'production'"),
    )
    _create_append_only_triggers()


def downgrade() -> None:
    _drop_append_only_triggers()
    op.drop_index(
        "uq_stage_one_production_per_task",
        table_name="stage_assignments",
        sqlite_where=sa.text("stage = 'production'"),
        postgresql_where=sa.text("stage = 'production'"),
    )
    op.drop_table("stage_assignments")
    op.drop_table("metrics")
    op.drop_index(op.f("ix_gate_decisions_model_id"), table_name="gate_decisions")
    op.drop_table("gate_decisions")
    op.drop_index(op.f("ix_bentos_model_id"), table_name="bentos")
    op.drop_table("bentos")
    op.drop_index(op.f("ix_models_task"), table_name="models")
    op.drop_index(op.f("ix_models_parent_model_id"), table_name="models")
    op.drop_index(op.f("ix_models_dataset_version_id"), table_name="models")
    op.drop_table("models")
    op.drop_index(op.f("ix_validation_runs_dataset_version_id"), table_name="validation_runs")
    op.drop_table("validation_runs")
    op.drop_index("ix_steward_decisions_record", table_name="steward_decisions")
    op.drop_table("steward_decisions")
    op.drop_index(op.f("ix_dataset_versions_dvc_md5"), table_name="dataset_versions")
    op.drop_table("dataset_versions")
    op.drop_index(op.f("ix_runs_prefect_flow_run_id"), table_name="runs")
    op.drop_index(op.f("ix_runs_kind"), table_name="runs")
    op.drop_table("runs")
    op.drop_table("datasets")
    op.drop_index("ix_audit_log_entity", table_name="audit_log")
    op.drop_index(op.f("ix_audit_log_action"), table_name="audit_log")
    op.drop_table("audit_log")
