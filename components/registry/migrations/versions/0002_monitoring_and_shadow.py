"""monitoring runs and shadow reports

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-08

``monitor_runs``: each drift check of a task's production model over a window of logged predictions.
``shadow_reports``: each replay of a candidate beside the production model (agreement, verdict). Both name
task models of their own task through composite foreign keys to ``models(id, task)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _create_monitor_runs() -> None:
    op.create_table(
        "monitor_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task", sa.String(length=100), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("policy", sa.String(length=200), nullable=False),
        sa.Column("policy_version", sa.String(length=64), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("n_window", sa.Integer(), nullable=False),
        sa.Column("n_reference", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("summary", JSON_TYPE, nullable=False),
        sa.Column("reasons", JSON_TYPE, nullable=False),
        sa.Column("report_uri", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.CheckConstraint("n_window >= 0 AND n_reference >= 0", name=op.f("ck_monitor_runs_counts")),
        sa.CheckConstraint("status IN ('ok', 'breach', 'insufficient')", name=op.f("ck_monitor_runs_status")),
        sa.CheckConstraint("window_start <= window_end", name=op.f("ck_monitor_runs_window_ordered")),
        sa.ForeignKeyConstraint(
            ["model_id", "task"], ["models.id", "models.task"], name="fk_monitor_runs_model_task"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_runs")),
    )
    op.create_index(op.f("ix_monitor_runs_model_id"), "monitor_runs", ["model_id"], unique=False)
    op.create_index("ix_monitor_runs_task_id", "monitor_runs", ["task", "id"], unique=False)


def _create_shadow_reports() -> None:
    op.create_table(
        "shadow_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task", sa.String(length=100), nullable=False),
        sa.Column("candidate_model_id", sa.Integer(), nullable=False),
        sa.Column("production_model_id", sa.Integer(), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("n_records", sa.Integer(), nullable=False),
        sa.Column("agreement", JSON_TYPE, nullable=False),
        sa.Column("metrics_delta", JSON_TYPE, nullable=True),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("reasons", JSON_TYPE, nullable=False),
        sa.Column("report_uri", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.CheckConstraint("n_records >= 0", name=op.f("ck_shadow_reports_n_records")),
        sa.CheckConstraint(
            "production_model_id IS NULL OR production_model_id <> candidate_model_id",
            name=op.f("ck_shadow_reports_not_itself"),
        ),
        sa.ForeignKeyConstraint(
            ["candidate_model_id", "task"],
            ["models.id", "models.task"],
            name="fk_shadow_reports_candidate_task",
        ),
        sa.ForeignKeyConstraint(
            ["production_model_id", "task"],
            ["models.id", "models.task"],
            name="fk_shadow_reports_production_task",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shadow_reports")),
    )
    op.create_index(
        "ix_shadow_reports_pair",
        "shadow_reports",
        ["candidate_model_id", "production_model_id"],
        unique=False,
    )
    op.create_index("ix_shadow_reports_task_id", "shadow_reports", ["task", "id"], unique=False)


def upgrade() -> None:
    _create_monitor_runs()
    _create_shadow_reports()


def downgrade() -> None:
    op.drop_index("ix_shadow_reports_task_id", table_name="shadow_reports")
    op.drop_index("ix_shadow_reports_pair", table_name="shadow_reports")
    op.drop_table("shadow_reports")
    op.drop_index("ix_monitor_runs_task_id", table_name="monitor_runs")
    op.drop_index(op.f("ix_monitor_runs_model_id"), table_name="monitor_runs")
    op.drop_table("monitor_runs")
