"""Alembic environment for the registry; run through :mod:`components.registry.db`, not an alembic.ini."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from components.registry.db import make_engine, migration_transaction
from components.registry.models import Base


def _run(connection: Connection) -> None:
    """Migrate on a connection already in a :func:`migration_transaction` (which holds the lock)."""
    context.configure(connection=connection, target_metadata=Base.metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def _run_offline() -> None:
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=Base.metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    _run_offline()
elif (shared := context.config.attributes.get("connection")) is not None:
    _run(shared)
else:
    url = context.config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("set sqlalchemy.url or pass a connection in config.attributes['connection']")
    with migration_transaction(make_engine(url)) as conn:
        _run(conn)
