"""Engines and schema migrations.

SQLite (the default) runs in WAL mode with foreign keys on; write transactions start with
``BEGIN IMMEDIATE`` so concurrent writer processes queue on the busy timeout instead of failing on a
read-to-write lock upgrade. Alembic runs programmatically from the ``migrations`` directory shipped
inside this package; migrating takes the database's write lock (SQLite) or a transaction-scoped advisory
lock (PostgreSQL) before it reads the revision, so processes opening a fresh registry at once migrate it
exactly once and never see it half-made.

A dropped connection (a PostgreSQL restart, a terminated session) is survived: the pool pings a
connection before handing it out, and :func:`reconnecting` runs a whole transaction again while the
server comes back, for up to ``RECONNECT_WINDOW_S`` (see ``docs/faults.md``).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from components.registry.errors import RegistryUnavailableError, SchemaVersionError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
WRITE_OPTION = "ecgops_write"
SQLITE_BUSY_TIMEOUT_S = 60.0
MIGRATION_LOCK_KEY = 0x6563_676F_7073  # "ecgops": the PostgreSQL advisory lock migrations hold
#: how long a registry call keeps retrying a dropped or refused connection before it gives up
RECONNECT_WINDOW_S = 60.0
#: SQLSTATEs of a lost or refused connection: class 08, and the server shutting the session down
_DISCONNECT_SQLSTATES = ("08", "57P01", "57P02", "57P03")
T = TypeVar("T")

log = logging.getLogger(__name__)
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
        _enable_wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _enable_wal(cursor: sqlite3.Cursor) -> None:
    """Switch the file to WAL (persistent, so once per file), retrying while another process holds it.

    SQLite can answer a connection opening a new file that other processes are switching to WAL
    with "database is locked" at once, without calling the busy handler.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] in ("wal", "memory"):
                return
            cursor.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


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
        return _revision(conn)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` in one transaction (serialised against concurrent upgraders)."""
    with migration_transaction(engine) as conn:
        _upgrade(conn, revision)


def upgrade_sql(url: str, revision: str = "head") -> None:
    """Print the SQL of the migrations (Alembic offline mode) for a DBA to apply."""
    command.upgrade(alembic_config(url), revision, sql=True)


def ensure_schema(engine: Engine) -> None:
    """Migrate a fresh database; refuse a database at another revision (run ``ecgops registry upgrade``)."""
    key = engine.url.render_as_string(hide_password=False)
    with _migrate_lock:
        if key in _migrated:
            return
        if reconnecting(engine, lambda: current_revision(engine)) != head_revision():
            reconnecting(engine, lambda: _migrate_if_fresh(engine))
        _migrated.add(key)


def _migrate_if_fresh(engine: Engine) -> None:
    with migration_transaction(engine) as conn:
        current = _revision(conn)
        if current is None:
            if inspect(conn).has_table("models"):
                raise SchemaVersionError(
                    f"{engine.url!r} holds registry tables but no Alembic revision; "
                    "stamp or recreate it before use"
                )
            _upgrade(conn, "head")
        elif current != head_revision():
            raise SchemaVersionError(
                f"registry schema at revision {current}, this code expects {head_revision()}: "
                "run `ecgops registry upgrade`"
            )


def is_disconnect(exc: BaseException, engine: Engine) -> bool:
    """True when ``exc`` says the connection to the server was lost or refused (not a SQL error).

    SQLite has no server to lose: its ``OperationalError`` (a lock timeout, a full disk) never counts.
    """
    if not isinstance(exc, DBAPIError) or engine.dialect.name == "sqlite":
        return False
    if exc.connection_invalidated:
        return True
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate:
        return str(sqlstate).startswith(_DISCONNECT_SQLSTATES)
    return isinstance(exc, OperationalError)  # refused or broken before the server said anything


def reconnecting(engine: Engine, attempt: Callable[[], T], *, window_s: float | None = None) -> T:
    """Run ``attempt`` (a whole transaction) again while the database connection is lost or refused.

    Waits with doubling pauses (50 ms to 2 s) for up to ``window_s`` (default ``RECONNECT_WINDOW_S``),
    then raises :class:`RegistryUnavailableError` naming the database and the last error. A transaction
    that failed this way was rolled back by the server, so running it again records it once.
    """
    started = time.monotonic()
    deadline = started + (RECONNECT_WINDOW_S if window_s is None else window_s)
    pause = 0.05
    while True:
        try:
            return attempt()
        except DBAPIError as exc:
            if not is_disconnect(exc, engine):
                raise
            if time.monotonic() + pause > deadline:
                raise unavailable(engine, exc, window_s=deadline - started) from exc
            log.warning("%s; reconnecting in %.2f s", unavailable(engine, exc, window_s=0), pause)
        time.sleep(pause)
        pause = min(2.0, pause * 2)


def unavailable(engine: Engine, exc: DBAPIError, *, window_s: float | None) -> RegistryUnavailableError:
    """The error a lost registry connection becomes, naming the database and what the driver said:
    after retrying for ``window_s`` seconds, or (``None``) inside an ``atomic()`` block."""
    detail = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
    where = engine.url.render_as_string(hide_password=True)
    if window_s == 0:  # not given up yet: what the retry logs
        return RegistryUnavailableError(f"lost the connection to the registry database {where}: {detail}")
    if window_s is not None:
        return RegistryUnavailableError(
            f"lost the connection to the registry database {where} and could not reconnect within "
            f"{window_s:.0f} s: {detail}"
        )
    return RegistryUnavailableError(
        f"lost the connection to the registry database {where} inside a transaction; it was rolled back "
        f"and nothing of it was recorded — run the command again: {detail}"
    )


def forget_schema_checks() -> None:
    """Forget which databases were checked in this process (after a database is dropped or replaced)."""
    with _migrate_lock:
        _migrated.clear()


@contextmanager
def migration_transaction(engine: Engine) -> Iterator[Connection]:
    """A write transaction holding the migration lock (SQLite's write lock, a PostgreSQL advisory lock):
    whoever reads the revision in it may act on it."""
    with writer(engine).begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        yield conn


def _revision(conn: Connection) -> str | None:
    heads = MigrationContext.configure(conn).get_current_heads()
    if len(heads) > 1:
        raise SchemaVersionError(f"the registry database has several revisions: {heads}")
    return heads[0] if heads else None


def _upgrade(conn: Connection, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, revision)
