"""Transactions for the registry API: one per call (retried on lost races and on a dropped connection)
or one per ``atomic()`` (a dropped connection there fails the block with ``RegistryUnavailableError``)."""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Self, TypeVar

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from components.registry import queries as q
from components.registry.db import is_disconnect, reconnecting, unavailable, writer
from components.registry.errors import ConstraintViolationError, InvalidArgumentError, NotFoundError
from components.registry.models import AuditEntry, Dataset

T = TypeVar("T")
ModelRef = q.ModelRef
MAX_ATTEMPTS = 20
_UNIQUE_VIOLATION = "23505"
_RETRYABLE_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock detected


class RegistryBase:
    """Connection, transactions and the audit writer shared by every part of the registry API."""

    def __init__(self, engine: Engine, *, actor: str) -> None:
        self.engine = engine
        self.actor = actor
        self._write_engine = writer(engine)
        self._local = threading.local()

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Registry({self.engine.url.render_as_string(hide_password=True)!r})"

    # ------------------------------------------------------------------ transactions

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """Run the enclosed registry calls in one transaction (nested blocks join the outer one)."""
        if getattr(self._local, "session", None) is not None:
            yield
            return
        with Session(self._write_engine, expire_on_commit=False) as session:
            self._local.session = session
            try:
                with session.begin():
                    yield
            except IntegrityError as exc:
                raise translate(exc) from exc
            except DBAPIError as exc:  # the enclosed calls cannot be replayed from here
                if is_disconnect(exc, self.engine):
                    raise unavailable(self.engine, exc, window_s=None) from exc
                raise
            finally:
                self._local.session = None

    def _write(self, fn: Callable[[Session], T]) -> T:
        shared: Session | None = getattr(self._local, "session", None)
        if shared is not None:
            try:
                result = fn(shared)
                shared.flush()
                return result
            except IntegrityError as exc:
                raise translate(exc) from exc
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                return reconnecting(self.engine, lambda: self._transaction(fn))
            except IntegrityError as exc:
                if attempt == MAX_ATTEMPTS or not retryable(exc):
                    raise translate(exc) from exc
            except DBAPIError as exc:
                if attempt == MAX_ATTEMPTS or not retryable(exc):
                    raise
            time.sleep(random.uniform(0, min(0.5, 0.01 * 2**attempt)))
        raise AssertionError("unreachable")

    def _transaction(self, fn: Callable[[Session], T]) -> T:
        """``fn`` in a write transaction of its own, committed."""
        with Session(self._write_engine, expire_on_commit=False) as session, session.begin():
            result = fn(session)
            session.flush()
        return result

    def _read(self, fn: Callable[[Session], T]) -> T:
        shared: Session | None = getattr(self._local, "session", None)
        if shared is not None:
            return fn(shared)

        def attempt() -> T:
            with Session(self.engine) as session, session.begin():
                return fn(session)

        return reconnecting(self.engine, attempt)

    def _audit(
        self,
        s: Session,
        *,
        actor: str | None,
        action: str,
        entity_type: str,
        entity_id: str,
        summary: str,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        s.add(
            AuditEntry(
                actor=actor or self.actor,
                action=action,
                entity_type=entity_type,
                entity_id=entity_id,
                summary=summary,
                reason=reason,
                details=details or {},
            )
        )

    def _dataset(self, s: Session, name: str, *, create: bool) -> Dataset:
        if create:
            serialize(s, "dataset", name)
        ds = s.scalar(select(Dataset).where(Dataset.name == name))
        if ds is None:
            if not create:
                raise NotFoundError(f"no dataset {name!r}")
            ds = Dataset(name=name)
            s.add(ds)
            s.flush()
        return ds


def serialize(s: Session, kind: str, key: str) -> None:
    """Queue transactions that allocate under the same key (a model's next version, a dataset's name).

    PostgreSQL: a transaction-scoped advisory lock, so that calls inside ``atomic()`` (not retried) do not
    collide. SQLite needs nothing: its write transactions already run one at a time (``BEGIN IMMEDIATE``).
    """
    if s.get_bind().dialect.name == "postgresql":
        digest = hashlib.sha256(f"{kind}:{key}".encode()).digest()
        s.execute(select(func.pg_advisory_xact_lock(int.from_bytes(digest[:8], "big", signed=True))))


def retryable(exc: DBAPIError) -> bool:
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate is not None:
        return sqlstate == _UNIQUE_VIOLATION or sqlstate in _RETRYABLE_SQLSTATES
    return isinstance(exc, IntegrityError) and "UNIQUE constraint failed" in str(exc.orig)


def translate(exc: IntegrityError) -> ConstraintViolationError:
    detail = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
    return ConstraintViolationError(f"the registry database refused the write: {detail}")


def nonempty(what: str, value: str) -> None:
    if not value or not value.strip():
        raise InvalidArgumentError(f"{what} must not be empty")


def one_of(what: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise InvalidArgumentError(f"{what} must be one of {', '.join(allowed)}; got {value!r}")


def check_window(offset: int, limit: int | None) -> None:
    """Refuse a negative ``offset`` or ``limit`` of a paged listing."""
    if offset < 0:
        raise InvalidArgumentError(f"offset must be >= 0, got {offset}")
    if limit is not None and limit < 0:
        raise InvalidArgumentError(f"limit must be >= 0, got {limit}")
