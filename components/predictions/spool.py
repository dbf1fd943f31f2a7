"""The writer's spool: a local folder of Parquet parts that could not reach the log at shutdown.

A writer that finds parts here sends them to the log before its own entries and deletes each once it is
appended. A part is sent under an exclusive ``flock`` (released if the process dies), so the server
processes sharing one spool folder never send the same part twice.
"""

from __future__ import annotations

import fcntl
import os
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq

from components.predictions.entry import PredictionEntry
from components.predictions.table import to_entries, to_table

#: what a part that cannot be read is renamed to (kept for a person to look at, never sent again)
UNREADABLE_SUFFIX = ".unreadable"


class Spool:
    """Parts waiting in ``folder`` (created on the first write)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def parts(self) -> list[Path]:
        """The parts waiting, oldest first."""
        if not self.folder.is_dir():
            return []
        return sorted(self.folder.glob("spool-*.parquet"))

    def write(self, entries: Sequence[PredictionEntry]) -> Path:
        """Keep ``entries`` as one part (written under a hidden name, then renamed); returns it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"spool-{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex}.parquet"
        temporary = self.folder / f".{name}.tmp"
        pq.write_table(to_table(entries), temporary)
        final = self.folder / name
        os.replace(temporary, final)
        return final

    @contextmanager
    def claimed(self, part: Path) -> Iterator[list[PredictionEntry] | None]:
        """The entries of ``part`` while this process holds it (None when another process does, or it is
        gone); delete it with :meth:`remove` inside the block once they are appended. ``ValueError`` or
        ``OSError`` when it cannot be read."""
        try:
            handle = part.open("rb")
        except FileNotFoundError:
            yield None
            return
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield None
                return
            if os.fstat(handle.fileno()).st_nlink == 0:  # sent and deleted while we waited
                yield None
                return
            yield to_entries(pq.read_table(handle))

    def remove(self, part: Path) -> None:
        part.unlink(missing_ok=True)

    def set_aside(self, part: Path) -> Path:
        """Rename a part that cannot be read so it is not tried again; returns its new name."""
        aside = part.with_name(part.name + UNREADABLE_SUFFIX)
        os.replace(part, aside)
        return aside
