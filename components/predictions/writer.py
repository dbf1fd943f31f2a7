"""Appends predictions to the log from a background thread, off the request path.

The caller hands over items (what it has at hand: a request's arrays and results); the thread turns them
into entries in batches with the caller's ``to_entries`` and appends them. An unreachable destination
never reaches the caller: the entries are kept, the failure is counted and the append is retried with a
doubling backoff; beyond ``max_pending`` the oldest are dropped and counted. :meth:`BackgroundWriter.close`
writes what is left, or spools it to a local folder that the next writer sends first. Delivery is at
least once: an append that was retried, or cut off by a close that timed out, may be logged twice.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Generic, TypeVar

import pyarrow as pa

from components.predictions.entry import PredictionEntry
from components.predictions.log import PredictionLog
from components.predictions.spool import Spool

T = TypeVar("T")
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WriterOptions:
    """When the writer appends, how much it keeps while the log is unreachable, where it spools."""

    flush_interval_s: float = 1.0
    max_batch: int = 512
    max_pending: int = 100_000
    retry_backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    spool_dir: Path | None = None

    def __post_init__(self) -> None:
        for name in ("flush_interval_s", "retry_backoff_s", "max_backoff_s", "max_batch", "max_pending"):
            if getattr(self, name) <= 0:
                raise ValueError(f"WriterOptions.{name} must be positive, got {getattr(self, name)}")


@dataclass(frozen=True)
class WriterStats:
    """Entries appended, failed appends, entries dropped, items and entries not yet appended, the last
    failure."""

    written: int
    failed_flushes: int
    dropped: int
    pending: int
    last_error: str | None


class _Backoff:
    """When the next append may be tried: at once, or after a delay that doubles with each failure."""

    def __init__(self, first_s: float, limit_s: float) -> None:
        self._first, self._limit = first_s, limit_s
        self._delay, self._next = first_s, 0.0

    def due(self) -> bool:
        return time.monotonic() >= self._next

    def failed(self) -> None:
        self._next = time.monotonic() + self._delay
        self._delay = min(self._delay * 2, self._limit)

    def succeeded(self) -> None:
        self._delay, self._next = self._first, 0.0


class BackgroundWriter(Generic[T]):
    """A thread that turns submitted items into :class:`PredictionEntry` and appends them to ``log``."""

    def __init__(
        self,
        log: PredictionLog,
        to_entries: Callable[[list[T]], list[PredictionEntry]],
        options: WriterOptions | None = None,
        *,
        on_failure: Callable[[Exception], None] | None = None,
    ) -> None:
        self._log, self._to_entries = log, to_entries
        self._options = options or WriterOptions()
        self._on_failure = on_failure
        self._spool = Spool(self._options.spool_dir) if self._options.spool_dir else None
        self._backoff = _Backoff(self._options.retry_backoff_s, self._options.max_backoff_s)
        self._cond = threading.Condition()
        self._inbox: deque[T] = deque()
        self._pending: deque[PredictionEntry] = deque()
        self._written = self._failed = self._dropped = 0
        self._last_error: str | None = None
        self._closing = self._abandoned = False
        self._thread = threading.Thread(target=self._run, name="prediction-log-writer", daemon=True)
        self._thread.start()

    def submit(self, item: T) -> None:
        """Hand over one item; never waits for I/O, never raises for the destination. After
        :meth:`close` the item is dropped (and counted)."""
        with self._cond:
            if self._closing:
                self._dropped += 1
                return
            self._inbox.append(item)
            if len(self._inbox) > self._options.max_pending:  # the thread is stuck in an append
                self._inbox.popleft()
                self._dropped += 1
            if len(self._inbox) == self._options.max_batch:
                self._cond.notify()

    def stats(self) -> WriterStats:
        with self._cond:
            pending = len(self._inbox) + len(self._pending)
            return WriterStats(self._written, self._failed, self._dropped, pending, self._last_error)

    def close(self, timeout_s: float = 10.0) -> None:
        """Append everything submitted (one last try, whatever the backoff), spool what the log does not
        take, and stop the thread. When the thread is still busy after ``timeout_s`` (a destination that
        hangs), what it holds is spooled from here. Closing again does nothing."""
        with self._cond:
            if self._closing:
                return
            self._closing = True
            self._cond.notify()
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            self._abandon()

    def __enter__(self) -> BackgroundWriter[T]:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _run(self) -> None:
        self._flush()
        closing = False
        while not closing:
            items, closing = self._take()
            try:
                self._step(items, closing)
            except Exception as exc:  # a bug must not stop the writer: the next step tries again
                logger.exception("prediction log: the writer's step failed")
                self._note_error(f"{type(exc).__name__}: {exc}")
                self._backoff.failed()

    def _step(self, items: list[T], closing: bool) -> None:
        """Convert the items taken; append when due, or for the last time and spool the rest at close."""
        self._convert(items)
        if closing:
            try:
                self._flush()
            finally:
                self._keep(self._drain_pending())
        elif self._backoff.due() and (self._pending or (self._spool and self._spool.parts())):
            self._flush()

    def _take(self) -> tuple[list[T], bool]:
        """Wait for a full batch, the flush interval or close; take the items submitted meanwhile."""
        with self._cond:
            if not self._closing and len(self._inbox) < self._options.max_batch:
                self._cond.wait(self._options.flush_interval_s)
            items = list(self._inbox)
            self._inbox.clear()
            return items, self._closing

    def _convert(self, items: list[T]) -> None:
        """Turn items into pending entries, a batch at a time; a batch that cannot be converted is dropped
        (a bug of ``to_entries``: retrying would not help)."""
        size = self._options.max_batch
        for start in range(0, len(items), size):
            chunk = items[start : start + size]
            try:
                entries = self._to_entries(chunk)
            except Exception as exc:
                logger.exception("prediction log: %d items could not be turned into entries", len(chunk))
                with self._cond:
                    self._dropped += len(chunk)
                    self._last_error = f"to_entries: {type(exc).__name__}: {exc}"
                continue
            with self._cond:
                self._pending.extend(entries)
                overflow = len(self._pending) - self._options.max_pending
                for _ in range(max(overflow, 0)):
                    self._pending.popleft()
                self._dropped += max(overflow, 0)

    def _flush(self) -> None:
        """Send the spooled parts, then the pending entries; the first failure ends it and backs off."""
        if self._send_spooled() and self._send_pending():
            self._backoff.succeeded()
        else:
            self._backoff.failed()

    def _send_pending(self) -> bool:
        while True:
            with self._cond:
                batch = list(itertools.islice(self._pending, self._options.max_batch))
            if not batch:
                return True
            if not self._append(batch):
                return False
            with self._cond:
                if self._abandoned:  # close() took the pending entries meanwhile
                    return True
                for _ in batch:
                    self._pending.popleft()

    def _send_spooled(self) -> bool:
        if self._spool is None:
            return True
        for part in self._spool.parts():
            try:
                with self._spool.claimed(part) as entries:
                    if entries is None:
                        continue
                    if not self._append(entries):
                        return False
                    self._spool.remove(part)
            except (pa.ArrowException, OSError, ValueError) as exc:
                aside = self._spool.set_aside(part)
                logger.error("prediction log: spooled part %s unreadable (%s), kept as %s", part, exc, aside)
                self._note_error(f"spooled part {part}: {exc}")
        return True

    def _append(self, entries: list[PredictionEntry]) -> bool:
        """Append ``entries``; a failure is counted, logged and reported to ``on_failure``."""
        try:
            self._log.append(entries)
        except Exception as exc:
            with self._cond:
                self._failed += 1
            self._note_error(f"{type(exc).__name__}: {exc}")
            logger.warning("prediction log: %d entries not appended, will retry: %s", len(entries), exc)
            if self._on_failure is not None:
                try:
                    self._on_failure(exc)
                except Exception:
                    logger.exception("prediction log: the on_failure hook failed")
            return False
        with self._cond:
            self._written += len(entries)
        return True

    def _note_error(self, message: str) -> None:
        with self._cond:
            self._last_error = message

    def _drain_pending(self) -> list[PredictionEntry]:
        with self._cond:
            entries = list(self._pending)
            self._pending.clear()
            return entries

    def _keep(self, entries: list[PredictionEntry]) -> None:
        """Spool entries the log did not take at close; without a spool folder they are dropped."""
        if not entries:
            return
        if self._spool is not None:
            try:
                part = self._spool.write(entries)
            except OSError as exc:
                logger.error("prediction log: could not spool %d entries: %s", len(entries), exc)
            else:
                logger.warning("prediction log: %d entries spooled to %s", len(entries), part)
                return
        logger.error("prediction log: %d entries dropped at close", len(entries))
        with self._cond:
            self._dropped += len(entries)

    def _abandon(self) -> None:
        """Close timed out: spool the entries and items the thread holds from this thread instead."""
        with self._cond:
            self._abandoned = True
            items = list(self._inbox)
            self._inbox.clear()
        self._convert(items)
        self._keep(self._drain_pending())
