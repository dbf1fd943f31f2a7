"""Migrations: up from empty on both databases, matching the ORM, and foreign revisions refused."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from components.cli.registry_cmd import registry_app
from components.config import get_settings
from components.registry import MonitorRunRecord, SchemaVersionError, ShadowReportRecord, open_registry
from components.registry.db import (
    current_revision,
    ensure_schema,
    forget_schema_checks,
    head_revision,
    make_engine,
    upgrade,
)
from components.registry.models import AuditEntry, Base, GateDecision, Model, StageAssignment

TABLES = {
    "datasets",
    "dataset_versions",
    "validation_runs",
    "runs",
    "models",
    "metrics",
    "gate_decisions",
    "bentos",
    "stage_assignments",
    "audit_log",
    "steward_decisions",
    "monitor_runs",
    "shadow_reports",
    "alembic_version",
}


def test_fresh_database_is_migrated_on_open(db_url: str) -> None:
    engine = make_engine(db_url)
    assert current_revision(engine) is None
    open_registry(db_url).close()
    assert current_revision(engine) == head_revision()
    assert set(inspect(engine).get_table_names()) == TABLES
    engine.dispose()


def test_migrated_schema_matches_the_orm(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    engine.dispose()
    assert diff == []


def test_upgrade_is_idempotent_and_downgrade_reverses_it(db_url: str) -> None:
    from alembic import command

    from components.registry.db import alembic_config, migration_transaction

    engine = make_engine(db_url)
    upgrade(engine)
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    cfg = alembic_config()
    with migration_transaction(engine) as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_a_database_at_an_unknown_revision_is_refused(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'ffff'"))
    forget_schema_checks()
    with pytest.raises(SchemaVersionError, match="run `ecgops registry upgrade`"):
        ensure_schema(engine)
    engine.dispose()


def test_cli_upgrade_applies_and_prints_sql(sqlite_url: str) -> None:
    runner = CliRunner()
    result = runner.invoke(registry_app, ["upgrade", "--url", sqlite_url])
    assert result.exit_code == 0, result.output
    assert "revision 0002 (was empty)" in result.output
    assert current_revision(make_engine(sqlite_url)) == head_revision()
    result = runner.invoke(registry_app, ["upgrade", "--sql", "--url", "postgresql+psycopg://x@localhost/y"])
    assert result.exit_code == 0, result.output
    assert "CREATE UNIQUE INDEX uq_stage_one_production_per_task" in result.output
    assert "WHERE stage = 'production'" in result.output


def test_default_registry_is_a_wal_sqlite_file_in_the_workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ECGOPS_WORKSPACE", str(tmp_path))
    monkeypatch.delenv("ECGOPS_REGISTRY_URL", raising=False)
    get_settings.cache_clear()
    try:
        with open_registry() as reg, reg.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert (tmp_path / ".ecgops" / "registry.db").is_file()
    finally:
        get_settings.cache_clear()


def test_a_registry_migrated_by_another_process_between_checks_is_accepted(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process may finish migrating right after this one first reads "no revision": no false alarm."""
    from components.registry import db

    other = make_engine(db_url)
    read_revision = db.current_revision

    def read_then_lose_the_race(engine: Engine) -> str | None:
        revision = read_revision(engine)
        upgrade(other)
        return revision

    monkeypatch.setattr(db, "current_revision", read_then_lose_the_race)
    forget_schema_checks()
    engine = make_engine(db_url)
    ensure_schema(engine)
    assert read_revision(engine) == head_revision()
    assert set(inspect(engine).get_table_names()) == TABLES
    engine.dispose()
    other.dispose()


def _open_fresh_registries(urls: list[str], start: Any, failures: Any) -> None:
    for url in urls:
        start.wait()
        try:
            open_registry(url).close()
        except Exception as exc:  # reported to the test, which fails on any
            failures.put(f"{url}: {exc!r}"[:300])
    failures.put(None)


@pytest.mark.slow
def test_processes_opening_new_sqlite_registries_together_all_succeed(tmp_path: Path) -> None:
    """Several processes open each new file at the same instant: WAL switch and migration race, none fails."""
    n_processes, n_files = 4, 30
    urls = [f"sqlite:///{tmp_path / f'registry-{i}.db'}" for i in range(n_files)]
    # children forked from a fresh single-threaded server (forking pytest itself would copy the locks its
    # other threads hold), with the registry code imported once there
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["components.registry"])
    start, failures = ctx.Barrier(n_processes), ctx.Queue()
    processes = [
        ctx.Process(target=_open_fresh_registries, args=(urls, start, failures)) for _ in range(n_processes)
    ]
    for proc in processes:
        proc.start()
    reported: list[str] = []
    finished = 0
    while finished < n_processes:
        message = failures.get(timeout=120)
        if message is None:
            finished += 1
        else:
            reported.append(message)
    for proc in processes:
        proc.join(timeout=30)
    assert reported == []
    for url in urls:
        engine = make_engine(url)
        assert current_revision(engine) == head_revision()
        engine.dispose()


def test_upgrading_a_0001_registry_with_data_keeps_it_and_adds_monitoring(db_url: str) -> None:
    """A registry in use at 0001 is refused until upgraded; the upgrade keeps its rows and their rules, and
    the new tables take monitoring runs and shadow reports of the models already there."""
    engine = make_engine(db_url)
    upgrade(engine, "0001")
    with Session(engine) as s, s.begin():
        models = [
            Model(
                name="af",
                version=v,
                kind="task",
                task="af",
                artifact_uri="x",
                sha256="0" * 64,
                created_by="t",
            )
            for v in (1, 2)
        ]
        s.add_all(models)
        s.flush()
        gate = GateDecision(model_id=models[0].id, policy="p@v1", verdict="pass", reasons=[], decided_by="t")
        s.add(gate)
        s.flush()
        s.add_all(
            [
                StageAssignment(
                    model_id=models[0].id,
                    task="af",
                    stage="production",
                    gate_decision_id=gate.id,
                    gate_verdict="pass",
                    assigned_by="t",
                ),
                StageAssignment(model_id=models[1].id, task="af", stage="candidate", assigned_by="t"),
                AuditEntry(
                    actor="t",
                    action="stage.changed",
                    entity_type="model",
                    entity_id="af@1",
                    summary="s",
                    details={},
                ),
            ]
        )
    forget_schema_checks()
    with pytest.raises(SchemaVersionError, match=r"revision 0001.*run `ecgops registry upgrade`"):
        ensure_schema(engine)
    result = CliRunner().invoke(registry_app, ["upgrade", "--url", db_url])
    assert result.exit_code == 0 and "revision 0002 (was 0001)" in result.output, result.output
    forget_schema_checks()
    with open_registry(db_url, actor="tester") as reg:
        assert [(m.ref, m.stage) for m in reg.models()] == [("af@2", "candidate"), ("af@1", "production")]
        assert [e.summary for e in reg.audit()] == ["s"]
        run = reg.record_monitor_run(
            MonitorRunRecord(
                model="af@1",
                policy="af-drift",
                policy_version="1",
                window_start=datetime(2026, 12, 1, tzinfo=UTC),
                window_end=datetime(2026, 12, 8, tzinfo=UTC),
                n_window=10,
                n_reference=100,
                status="insufficient",
            )
        )
        report = reg.record_shadow_report(
            ShadowReportRecord("af@2", "af@1", "drop:/drops/2026-12", 60, {}, passed=True)
        )
        assert (run.model, report.production) == ("af@1", "af@1")
        assert [e.action for e in reg.audit(limit=2)] == ["shadow.reported", "monitor.run"]
    with Session(engine) as s, pytest.raises(DBAPIError), s.begin():  # the old rules still hold
        s.execute(text("UPDATE audit_log SET summary = 'changed'"))
    engine.dispose()
