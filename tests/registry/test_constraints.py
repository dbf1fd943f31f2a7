"""Rules the database itself enforces, tested by writing around the repository, and the API's refusals."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from components.registry import (
    ConstraintViolationError,
    InvalidArgumentError,
    MetricInfo,
    PromotionRefusedError,
    Registry,
)
from components.registry.models import AuditEntry, GateDecision, Model, StageAssignment, StewardDecision

from .helpers import MD5_A, MD5_B, SHA, add_dataset


def _task_model(reg: Registry, name: str = "af", gate: str | None = "pass") -> int:
    model = reg.register_model(name, kind="task", task="af", artifact_uri="x", sha256=SHA)
    if gate is not None:
        reg.record_gate_decision(
            model, policy="p", verdict=gate, reasons=[] if gate == "pass" else ["too low"]
        )
    return model.id


def test_database_refuses_a_second_production_model_per_task(reg: Registry) -> None:
    first, second = _task_model(reg), _task_model(reg)
    reg.promote(first, "production")
    with Session(reg.engine) as s, pytest.raises(IntegrityError), s.begin():
        gate = s.query(GateDecision).filter_by(model_id=second).one()
        s.execute(
            update(StageAssignment)
            .where(StageAssignment.model_id == second)
            .values(stage="production", gate_decision_id=gate.id, gate_verdict="pass")
        )
    assert [m.ref for m in reg.models(task="af", stage="production")] == ["af@1"]


def test_database_refuses_production_without_a_passing_gate_or_forced_reason(reg: Registry) -> None:
    failed = _task_model(reg, gate="fail")
    with Session(reg.engine) as s, pytest.raises(IntegrityError), s.begin():
        s.execute(
            update(StageAssignment).where(StageAssignment.model_id == failed).values(stage="production")
        )
    with Session(reg.engine) as s, pytest.raises(IntegrityError), s.begin():
        gate = s.query(GateDecision).filter_by(model_id=failed).one()
        s.execute(
            update(StageAssignment)
            .where(StageAssignment.model_id == failed)
            .values(stage="production", gate_decision_id=gate.id, gate_verdict="pass")
        )


def test_database_refuses_a_stage_row_whose_task_is_not_its_models(reg: Registry) -> None:
    model = _task_model(reg)
    with Session(reg.engine) as s, pytest.raises(IntegrityError), s.begin():
        s.execute(update(StageAssignment).where(StageAssignment.model_id == model).values(task="other"))


def test_database_refuses_a_task_model_without_task_and_a_bad_hash(reg: Registry) -> None:
    with Session(reg.engine) as s, pytest.raises(IntegrityError), s.begin():
        s.add(
            Model(name="m", version=1, kind="task", task=None, artifact_uri="x", sha256=SHA, created_by="t")
        )
    with Session(reg.engine) as s, pytest.raises(IntegrityError), s.begin():
        s.add(Model(name="m", version=1, kind="foundation", artifact_uri="x", sha256="abc", created_by="t"))


def test_database_refuses_a_validation_run_of_another_dataset_version(reg: Registry) -> None:
    add_dataset(reg, MD5_A)
    add_dataset(reg, MD5_B)
    vr_a = reg.record_validation_run(MD5_A, policy_version="1", verdict="pass", report_uri="r", statistics={})
    dv_b = reg.find_dataset_version(MD5_B)
    with Session(reg.engine) as s, pytest.raises(IntegrityError), s.begin():
        s.add(
            Model(
                name="m",
                version=1,
                kind="foundation",
                artifact_uri="x",
                sha256=SHA,
                created_by="t",
                dataset_version_id=dv_b.id,
                validation_run_id=vr_a,
            )
        )
    with pytest.raises(InvalidArgumentError, match="another dataset version"):
        reg.register_model(
            "m",
            kind="foundation",
            artifact_uri="x",
            sha256=SHA,
            dataset_version_md5=MD5_B,
            validation_run_id=vr_a,
        )


@pytest.mark.parametrize("table", [AuditEntry, StewardDecision])
def test_append_only_tables_refuse_update_and_delete(reg: Registry, table: type) -> None:
    _task_model(reg)
    reg.record_steward_decision(
        dataset="demo", record_id="r1", decision="reject", note="noise", reviewer="ann"
    )
    with Session(reg.engine) as s, pytest.raises(DBAPIError, match="append-only"), s.begin():
        s.execute(delete(table))
    column = "actor" if table is AuditEntry else "reviewer"
    with Session(reg.engine) as s, pytest.raises(DBAPIError, match="append-only"), s.begin():
        s.execute(update(table).values({column: "mallory"}))
    if reg.engine.dialect.name == "postgresql":
        with Session(reg.engine) as s, pytest.raises(DBAPIError, match="append-only"), s.begin():
            s.execute(text(f"TRUNCATE {table.__tablename__}"))  # type: ignore[attr-defined]
    assert reg.audit()
    assert reg.steward_decisions("demo")["r1"].reviewer == "ann"


def test_promotion_of_a_failed_model_needs_force_and_reason(reg: Registry) -> None:
    failed = _task_model(reg, gate="fail")
    ungated = _task_model(reg, gate=None)
    with pytest.raises(PromotionRefusedError, match="failed gate p: too low"):
        reg.promote(failed, "production")
    with pytest.raises(PromotionRefusedError, match="has no gate decision"):
        reg.promote(ungated, "staging")
    with pytest.raises(InvalidArgumentError, match="--reason"):
        reg.promote(failed, "production", force=True)
    change = reg.promote(failed, "production", force=True, reason="clinical sign-off, ticket 42")
    assert change.forced and change.to_stage == "production"
    assert reg.audit(action="stage.changed", limit=1)[0].reason == "clinical sign-off, ticket 42"


def test_foundation_models_have_no_stage(reg: Registry) -> None:
    fm = reg.register_model("fm", kind="foundation", artifact_uri="x", sha256=SHA)
    with pytest.raises(PromotionRefusedError, match="foundation model"):
        reg.promote(fm, "production", force=True, reason="x")


def test_promoting_replaces_and_archives_the_previous_production_model(reg: Registry) -> None:
    first, second = _task_model(reg), _task_model(reg)
    reg.promote(first, "staging")
    reg.promote(first, "production")
    change = reg.promote(second, "production")
    assert change.demoted == ("af@1",)
    assert reg.model(first).stage == "archived"
    assert reg.model_at_stage("af").ref == "af@2"  # type: ignore[union-attr]
    with pytest.raises(PromotionRefusedError, match="already in production"):
        reg.promote(second, "production")


def test_an_integrity_error_inside_atomic_is_typed(reg: Registry) -> None:
    add_dataset(reg)
    with pytest.raises(ConstraintViolationError, match="refused the write"), reg.atomic():
        model = reg.register_model("m", kind="task", task="t", artifact_uri="x", sha256=SHA)
        reg.record_metrics(
            model, [MetricInfo("test", "all", "auroc", 0.8), MetricInfo("test", "all", "auroc", 0.7)]
        )
    assert reg.models() == []
