"""Engines and schema migrations.

SQLite (the default) runs in WAL mode with foreign keys on; write transactions start with
``BEGIN IMMEDIATE`` so concurrent writer processes queue on the busy timeout instead of failing on a
read-to-write lock upgrade. PostgreSQL needs nothing special. Alembic runs programmatically from the
``migrations`` directory shipped inside this package.
"""

from __future__ import annotations

import threading
from functools import cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url

from components.registry.errors import SchemaVersionError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
WRITE_OPTION = "ecgops_write"
SQLITE_BUSY_TIMEOUT_S = 60.0

_migrated: set[str] = set()
_migrate_lock = threading.Lock()


def make_engine(url: str) -> Engine:
    """An engine for ``url`` with the registry's connection settings (SQLite pragmas, pool pre-ping)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" event below emits BEGIN itself
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def writer(engine: Engine) -> Engine:
    """The same engine and pool, marked for writing: on SQLite its transactions take the write lock first."""
    return engine.execution_options(**{WRITE_OPTION: True})


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config pointing at the migrations shipped in this package."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@cache
def head_revision() -> str:
    """The newest migration revision in this package."""
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if len(heads) != 1:
        raise SchemaVersionError(f"the shipped migrations have {len(heads)} heads, expected one: {heads}")
    return heads[0]


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (``None`` for a database never migrated)."""
    with engine.connect() as conn:
        heads = MigrationContext.configure(conn).get_current_heads()
    if len(heads) > 1:
        raise SchemaVersionError(f"the registry database has several revisions: {heads}")
    return heads[0] if heads else None


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` in one transaction (serialised against concurrent upgraders)."""
    cfg = alembic_config()
    with writer(engine).begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def upgrade_sql(url: str, revision: str = "head") -> None:
    """Print the SQL of the migrations (Alembic offline mode) for a DBA to apply."""
    command.upgrade(alembic_config(url), revision, sql=True)


def ensure_schema(engine: Engine) -> None:
    """Migrate a fresh database; refuse a database at another revision (run ``ecgops registry upgrade``)."""
    key = engine.url.render_as_string(hide_password=False)
    with _migrate_lock:
        if key in _migrated:
            return
        current = current_revision(engine)
        if current is None:
            if _has_registry_tables(engine):
                raise SchemaVersionError(
                    f"{engine.url!r} holds registry tables but no Alembic revision; "
                    "stamp or recreate it before use"
                )
            upgrade(engine)
        elif current != head_revision():
            raise SchemaVersionError(
                f"registry schema at revision {current}, this code expects {head_revision()}: "
                "run `ecgops registry upgrade`"
            )
        _migrated.add(key)


def forget_schema_checks() -> None:
    """Forget which databases were checked in this process (after a database is dropped or replaced)."""
    with _migrate_lock:
        _migrated.clear()


def _has_registry_tables(engine: Engine) -> bool:
    with engine.connect() as conn:
        return inspect(conn).has_table("models")
