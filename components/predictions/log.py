"""The prediction log: date-partitioned Parquet parts in a local folder or any fsspec URL.

Layout: ``<url>/date=YYYY-MM-DD/part-<utc time>-<uuid>.parquet``, one part per day an append covers. A
part is written under a hidden temporary name in its folder and then moved into place, so a reader never
sees half of one. Reading prunes partitions by date first; a part that cannot be read is skipped and
reported, never fatal.
"""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from components.predictions.entry import PredictionEntry
from components.predictions.errors import PredictionLogError
from components.predictions.table import QUALITY_PREFIX, TIME_TYPE, conform, empty_table, to_table

PARTITION = re.compile(r"^date=(.+)$")


@dataclass(frozen=True)
class SkippedPart:
    """A part or partition of the log that could not be read, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class LogWindow:
    """The entries a read found (one row each, sorted by time) and the parts it had to skip."""

    frame: pd.DataFrame
    skipped: list[SkippedPart] = field(default_factory=list)


@dataclass(frozen=True)
class _Query:
    """What a read keeps: ``since <= time < until``, a model (``name`` or ``name@version``), task, source."""

    since: datetime | None = None
    until: datetime | None = None
    model: str | None = None
    task: str | None = None
    source: str | None = None

    def __post_init__(self) -> None:
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name} must be timezone-aware, got {value.isoformat()}")

    def covers(self, day: date) -> bool:
        """Whether the partition of ``day`` may hold entries of the window."""
        after = self.since is None or day >= self.since.astimezone(UTC).date()
        return after and (self.until is None or day <= self.until.astimezone(UTC).date())

    def expression(self) -> pc.Expression | None:
        """The row filter, or None when every row is kept."""
        terms = []
        if self.since is not None:
            terms.append(pc.field("time") >= pa.scalar(self.since, TIME_TYPE))
        if self.until is not None:
            terms.append(pc.field("time") < pa.scalar(self.until, TIME_TYPE))
        if self.model is not None:
            name = pc.field("model_ref")
            terms.append(name == self.model if "@" in self.model else pc.starts_with(name, f"{self.model}@"))
        for column, value in (("task", self.task), ("source", self.source)):
            if value is not None:
                terms.append(pc.field(column) == value)
        if not terms:
            return None
        combined = terms[0]
        for term in terms[1:]:
            combined = combined & term
        return combined


class PredictionLog:
    """The prediction log at ``url``: a local folder or any fsspec URL (``memory://``, ``s3://``, ...)."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self._fs, root = fsspec.core.url_to_fs(url)
        except (ValueError, ImportError) as exc:
            raise PredictionLogError(f"the prediction log URL {url} cannot be opened: {exc}") from exc
        self._root = root.rstrip("/") or "/"

    def __repr__(self) -> str:
        return f"PredictionLog({self.url!r})"

    def append(self, entries: Sequence[PredictionEntry]) -> list[str]:
        """Write ``entries`` as one Parquet part per day they cover; returns the parts written.
        :class:`PredictionLogError` when the destination cannot be reached or written."""
        by_day: dict[date, list[PredictionEntry]] = defaultdict(list)
        for entry in entries:
            by_day[entry.time.date()].append(entry)
        name = f"part-{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex}.parquet"
        staged = [(self._stage(day, name, to_table(group)), day) for day, group in sorted(by_day.items())]
        written = []
        for temporary, day in staged:
            final = f"{self._partition(day)}/{name}"
            with self._reaching("write to"):
                self._fs.mv(temporary, final)
            written.append(self._display(final))
        return written

    def read(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        model: str | None = None,
        task: str | None = None,
        source: str | None = None,
    ) -> LogWindow:
        """The entries with ``since <= time < until`` (aware datetimes) of ``model`` (``name`` or
        ``name@version``), ``task`` and ``source``, sorted by time; unreadable parts are skipped and
        reported. An absent log is an empty window."""
        query = _Query(since, until, model, task, source)
        skipped: list[SkippedPart] = []
        expression = query.expression()
        tables = []
        for day, folder in self._partitions(skipped):
            if not query.covers(day):
                continue
            for path in self._parts(folder, skipped):
                table = self._read_part(path, skipped)
                if table is not None:
                    tables.append(table if expression is None else table.filter(expression))
        return LogWindow(_frame(tables), skipped)

    def prune(self, retention_days: int, *, now: datetime | None = None) -> list[str]:
        """Remove the date partitions older than ``retention_days`` days before ``now``; returns them."""
        if retention_days < 1:
            raise ValueError(f"retention_days must be at least 1, got {retention_days}")
        cutoff = ((now or datetime.now(UTC)) - timedelta(days=retention_days)).astimezone(UTC).date()
        removed = []
        for day, folder in self._partitions([]):
            if day < cutoff:
                with self._reaching("remove a partition of"):
                    self._fs.rm(folder, recursive=True)
                removed.append(self._display(folder))
        return removed

    def _stage(self, day: date, name: str, table: pa.Table) -> str:
        """Write ``table`` under a hidden temporary name in the partition of ``day``; returns that name."""
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        folder = self._partition(day)
        temporary = f"{folder}/.{name}.tmp"
        with self._reaching("write to"):
            self._fs.makedirs(folder, exist_ok=True)
            self._fs.pipe_file(temporary, sink.getvalue().to_pybytes())
        return temporary

    def _partition(self, day: date) -> str:
        return f"{self._root.rstrip('/')}/date={day.isoformat()}"

    def _partitions(self, skipped: list[SkippedPart]) -> list[tuple[date, str]]:
        """The date partitions, oldest first; a ``date=`` folder that names no date is reported."""
        self._fs.invalidate_cache()  # object stores cache listings: a long-lived reader must see new parts
        try:
            listing = self._fs.ls(self._root, detail=True)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise PredictionLogError(f"could not list the prediction log at {self.url}: {exc}") from exc
        found = []
        for item in listing:
            name = item["name"].rstrip("/").rsplit("/", 1)[-1]
            match = PARTITION.match(name)
            if item["type"] != "directory" or match is None:
                continue
            try:
                found.append((date.fromisoformat(match.group(1)), item["name"].rstrip("/")))
            except ValueError:
                skipped.append(SkippedPart(self._display(item["name"]), f"{name} names no date (YYYY-MM-DD)"))
        return sorted(found)

    def _parts(self, folder: str, skipped: list[SkippedPart]) -> list[str]:
        """The finished parts of one partition (hidden temporary files are not parts yet)."""
        try:
            listing = self._fs.ls(folder, detail=True)
        except OSError as exc:
            skipped.append(SkippedPart(self._display(folder), f"cannot be listed: {exc}"))
            return []
        names = (item["name"] for item in listing if item["type"] == "file")
        return sorted(n for n in names if n.endswith(".parquet") and not n.rsplit("/", 1)[-1].startswith("."))

    def _read_part(self, path: str, skipped: list[SkippedPart]) -> pa.Table | None:
        try:
            with self._fs.open(path, "rb") as handle:
                return conform(pq.read_table(handle))
        except (pa.ArrowException, OSError, ValueError) as exc:
            skipped.append(SkippedPart(self._display(path), str(exc) or type(exc).__name__))
            return None

    @contextmanager
    def _reaching(self, what: str) -> Iterator[None]:
        """Filesystem calls whose failure is a :class:`PredictionLogError` naming the URL."""
        try:
            yield
        except (OSError, ValueError) as exc:
            raise PredictionLogError(f"could not {what} the prediction log at {self.url}: {exc}") from exc

    def _display(self, path: str) -> str:
        """``path`` as the user knows it: a local path, else the URL."""
        path = path.rstrip("/")
        return path if isinstance(self._fs, LocalFileSystem) else str(self._fs.unstrip_protocol(path))


def _frame(tables: list[pa.Table]) -> pd.DataFrame:
    """One frame of the parts' rows sorted by time; quality columns a part lacks are NaN there."""
    table = pa.concat_tables(tables, promote_options="default") if tables else empty_table()
    frame: pd.DataFrame = table.sort_by("time").to_pandas()
    return frame.reset_index(drop=True)


def volume(frame: pd.DataFrame) -> pd.DataFrame:
    """Entries per day (UTC), model and source: columns ``date``, ``model_ref``, ``source``, ``n``."""
    columns = ["date", "model_ref", "source"]
    if frame.empty:
        return pd.DataFrame({name: pd.Series(dtype=str) for name in columns} | {"n": pd.Series(dtype=int)})
    days = frame["time"].dt.strftime("%Y-%m-%d")
    return frame.assign(date=days).groupby(columns).size().rename("n").reset_index()


def entry_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of a window as JSON data shaped like :class:`PredictionEntry`: quality features nested
    (NaN, and a feature the entry lacks, as null), the time in ISO 8601."""
    records = []
    for row in pa.Table.from_pandas(frame, preserve_index=False).to_pylist():
        names = [name for name in row if name.startswith(QUALITY_PREFIX)]
        quality = {name.removeprefix(QUALITY_PREFIX): row.pop(name) for name in names}
        records.append(row | {"time": row["time"].isoformat(), "quality": quality})
    return records
