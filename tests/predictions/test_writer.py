"""The background writer on real files: flushed at close, an unreachable destination counted and retried
until it is back, spooled at close and re-sent by the next writer, bounded while the log is down."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from components.predictions.entry import PredictionEntry
from components.predictions.errors import PredictionLogError
from components.predictions.log import PredictionLog
from components.predictions.writer import BackgroundWriter, WriterOptions

from .helpers import T0, entry

FAST = WriterOptions(flush_interval_s=0.02, retry_backoff_s=0.02, max_backoff_s=0.1)


@dataclass(frozen=True)
class Served:
    """What a request leaves for the writer: its number, its canonical signal and probabilities."""

    number: int
    signal: np.ndarray
    probabilities: np.ndarray
    slow: tuple[threading.Event, threading.Event] | None = None  # (taken up, may go on)


def served(number: int, slow: tuple[threading.Event, threading.Event] | None = None) -> Served:
    rng = np.random.default_rng(number)
    return Served(number, rng.normal(0, 0.3, (12, 1000)).astype(np.float32), rng.uniform(size=5), slow)


def to_entries(items: list[Served]) -> list[PredictionEntry]:
    """Signal-quality features computed off the request path; the signal itself is not kept."""
    for item in items:
        if item.slow is not None:
            item.slow[0].set()
            item.slow[1].wait(10)
    return [
        entry(
            T0 + timedelta(seconds=item.number),
            request_id=f"req-{item.number}",
            quality={
                "amplitude_std": float(item.signal.std()),
                "flat_leads": float((item.signal.std(1) == 0).sum()),
            },
            probabilities=item.probabilities.tolist(),
            decisions=(item.probabilities >= 0.5).tolist(),
        )
        for item in items
    ]


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def logged(url: str) -> list[str]:
    return list(PredictionLog(url).read().frame["request_id"])


@pytest.fixture
def blocked(tmp_path: Path) -> tuple[str, Path]:
    """A log URL that cannot be reached (a file stands where its folder should be) and that file."""
    blocker = tmp_path / "mount"
    blocker.write_text("not a folder")
    return str(blocker / "predictions"), blocker


def test_close_appends_everything_submitted(tmp_path: Path) -> None:
    url = str(tmp_path / "predictions")
    writer = BackgroundWriter(PredictionLog(url), to_entries, WriterOptions(flush_interval_s=60, max_batch=4))
    for number in range(10):
        writer.submit(served(number))
    writer.close()
    writer.close()  # again: nothing happens
    assert logged(url) == [f"req-{n}" for n in range(10)]
    stats = writer.stats()
    assert (stats.written, stats.pending, stats.dropped, stats.failed_flushes) == (10, 0, 0, 0)
    frame = PredictionLog(url).read().frame
    assert frame["quality.amplitude_std"].between(0.25, 0.35).all() and "signal" not in frame.columns
    writer.submit(served(11))  # after close: dropped and counted, not raised
    assert writer.stats().dropped == 1


def test_an_unreachable_log_is_counted_and_retried_until_it_is_back(blocked: tuple[str, Path]) -> None:
    url, blocker = blocked
    failures: list[Exception] = []
    writer = BackgroundWriter(PredictionLog(url), to_entries, FAST, on_failure=failures.append)
    for number in range(6):
        writer.submit(served(number))
    wait_until(lambda: writer.stats().failed_flushes >= 3)
    stats = writer.stats()
    assert stats.written == 0 and stats.pending == 6 and url in (stats.last_error or "")
    assert all(isinstance(f, PredictionLogError) for f in failures)

    blocker.unlink()
    wait_until(lambda: writer.stats().written == 6)
    writer.close()
    assert logged(url) == [f"req-{n}" for n in range(6)]
    assert writer.stats().pending == 0 and writer.stats().dropped == 0


def test_what_the_log_refuses_at_close_is_spooled_and_sent_by_the_next_writer(
    blocked: tuple[str, Path], tmp_path: Path
) -> None:
    url, blocker = blocked
    options = WriterOptions(flush_interval_s=60, spool_dir=tmp_path / "spool")
    first = BackgroundWriter(PredictionLog(url), to_entries, options)
    for number in range(5):
        first.submit(served(number))
    first.close()
    spooled = sorted((tmp_path / "spool").glob("*.parquet"))
    assert len(spooled) == 1 and pq.read_metadata(spooled[0]).num_rows == 5
    assert first.stats().dropped == 0 and first.stats().failed_flushes == 1

    blocker.unlink()
    second = BackgroundWriter(
        PredictionLog(url), to_entries, WriterOptions(flush_interval_s=0.02, spool_dir=tmp_path / "spool")
    )
    wait_until(lambda: second.stats().written == 5)
    second.submit(served(5))
    second.close()
    assert logged(url) == [f"req-{n}" for n in range(6)]
    assert not list((tmp_path / "spool").glob("*.parquet"))


def test_without_a_spool_folder_what_the_log_refuses_at_close_is_dropped_and_counted(
    blocked: tuple[str, Path],
) -> None:
    writer = BackgroundWriter(PredictionLog(blocked[0]), to_entries, WriterOptions(flush_interval_s=60))
    for number in range(3):
        writer.submit(served(number))
    writer.close()
    assert writer.stats().dropped == 3 and writer.stats().pending == 0


def test_beyond_max_pending_the_oldest_are_dropped_and_counted(blocked: tuple[str, Path]) -> None:
    url, blocker = blocked
    writer = BackgroundWriter(
        PredictionLog(url),
        to_entries,
        WriterOptions(
            flush_interval_s=0.02, retry_backoff_s=0.02, max_backoff_s=0.05, max_batch=2, max_pending=5
        ),
    )
    for number in range(12):
        writer.submit(served(number))
    wait_until(lambda: writer.stats().dropped == 7 and writer.stats().failed_flushes >= 1)
    assert writer.stats().pending == 5
    blocker.unlink()
    wait_until(lambda: writer.stats().written == 5)
    writer.close()
    assert logged(url) == [f"req-{n}" for n in range(7, 12)]


def test_a_close_that_times_out_spools_what_the_busy_thread_holds(
    blocked: tuple[str, Path], tmp_path: Path
) -> None:
    url, blocker = blocked
    spool = tmp_path / "spool"
    writer = BackgroundWriter(
        PredictionLog(url),
        to_entries,
        WriterOptions(flush_interval_s=0.02, retry_backoff_s=0.02, spool_dir=spool),
    )
    for number in range(3):
        writer.submit(served(number))
    wait_until(lambda: writer.stats().failed_flushes >= 1)
    taken, release = threading.Event(), threading.Event()
    writer.submit(served(3, slow=(taken, release)))  # the thread is busy with this one until released
    assert taken.wait(5)
    for number in range(4, 6):
        writer.submit(served(number))
    started = time.monotonic()
    writer.close(timeout_s=0.2)
    assert time.monotonic() - started < 2
    assert sum(pq.read_metadata(p).num_rows for p in spool.glob("*.parquet")) == 5  # 0-2 and 4-5

    release.set()  # the thread finishes its item, cannot append it, and spools it too
    wait_until(lambda: sum(pq.read_metadata(p).num_rows for p in spool.glob("*.parquet")) == 6)
    blocker.unlink()
    with BackgroundWriter(
        PredictionLog(url), to_entries, WriterOptions(flush_interval_s=0.02, spool_dir=spool)
    ) as nxt:
        wait_until(lambda: nxt.stats().written == 6)
    assert sorted(logged(url)) == sorted(f"req-{n}" for n in range(6))
