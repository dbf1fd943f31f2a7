"""Migrations: up from empty on both databases, matching the ORM, and foreign revisions refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from typer.testing import CliRunner

from components.cli.registry_cmd import registry_app
from components.config import get_settings
from components.registry import SchemaVersionError, open_registry
from components.registry.db import (
    current_revision,
    ensure_schema,
    forget_schema_checks,
    head_revision,
    make_engine,
    upgrade,
)
from components.registry.models import Base

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

    from components.registry.db import alembic_config, writer

    engine = make_engine(db_url)
    upgrade(engine)
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    cfg = alembic_config()
    with writer(engine).begin() as conn:
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
    assert "revision 0001 (was empty)" in result.output
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
