"""One retraining run per workspace at a time.

An exclusive ``flock`` on ``<state_dir>/locks/workspace.lock``: a second run waits for the first (up to
``orchestration.lock_timeout_s``), then fails with who holds it. The kernel releases the lock when the
holder dies, so a killed run never leaves the workspace locked. The lock is re-entrant within a process
(stage flows nested in ``retrain`` do not wait for their parent).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from components.config import Settings
from components.errors import UserError

_POLL_S = 0.5
_held: dict[Path, int] = {}
_held_guard = threading.Lock()


class WorkspaceBusyError(UserError, RuntimeError):
    """Another run holds the workspace longer than this run may wait."""


def lock_path(settings: Settings) -> Path:
    return settings.state_dir / "locks" / "workspace.lock"


def holder(settings: Settings) -> dict[str, Any] | None:
    """Who holds (or last held) the workspace lock, as its holder wrote it."""
    path = lock_path(settings)
    try:
        record = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):  # no lock yet, or its holder is writing it
        return None
    return record if isinstance(record, dict) else None


@contextmanager
def workspace_lock(
    settings: Settings,
    *,
    timeout_s: float,
    owner: dict[str, Any] | None = None,
    on_wait: Callable[[dict[str, Any] | None], None] | None = None,
) -> Iterator[None]:
    """Hold the workspace exclusively; ``on_wait`` is told once who holds it when this run has to wait."""
    path = lock_path(settings).resolve()
    with _held_guard:
        if path in _held:
            _held[path] += 1
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield
        finally:
            with _held_guard:
                _held[path] -= 1
        return

    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+")
    try:
        _acquire(handle, settings, timeout_s, on_wait)
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(_owner_record(owner)))
        handle.flush()
        with _held_guard:
            _held[path] = 1
        try:
            yield
        finally:
            with _held_guard:
                del _held[path]
            handle.seek(0)
            handle.truncate()
            handle.flush()
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        handle.close()


def _acquire(
    handle: Any, settings: Settings, timeout_s: float, on_wait: Callable[[dict[str, Any] | None], None] | None
) -> None:
    deadline = time.monotonic() + timeout_s
    told = False
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            current = holder(settings)
            if time.monotonic() >= deadline:
                raise WorkspaceBusyError(
                    f"workspace {settings.workspace} is busy: {_describe(current)}; waited {timeout_s:.0f} s "
                    "(orchestration.lock_timeout_s)"
                ) from None
            if not told and on_wait is not None:
                on_wait(current)
                told = True
            time.sleep(min(_POLL_S, max(0.0, deadline - time.monotonic())))


def _owner_record(owner: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": datetime.now(UTC).isoformat(timespec="seconds"),
        **(owner or {}),
    }


def _describe(record: dict[str, Any] | None) -> str:
    if not record:
        return "another process holds its lock"
    parts = [f"pid {record.get('pid')} on {record.get('host')} since {record.get('since')}"]
    if record.get("flow_run_id"):
        parts.append(f"Prefect flow run {record['flow_run_id']}")
    return "run by " + ", ".join(parts)
