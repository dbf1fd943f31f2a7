"""Adaptive batching: concurrent requests share one batched forward of the model.

Requests queue up while the model works; when it is free it takes everything waiting (up to
``max_batch_size``) in one forward. One client gets a batch of one at once; many clients get large
batches without any tuning. ``wait_ms`` > 0 lets the first record of a batch wait that long for
company when the model is idle (trading latency for throughput). The forward runs on one worker thread,
so the event loop keeps parsing requests meanwhile. A forward returns one or more arrays with a row per
record (a task model: probabilities and pooled features); each record gets its row of each. The windows
of a long record are queued together (:meth:`AdaptiveBatcher.submit_many`) and batched like records.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

#: ``(b, 12, t)`` signals + ``(b, 12)`` masks → arrays with a row per record
Forward = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, ...]]
Rows = tuple[np.ndarray, ...]
BatchObserver = Callable[[int, float], None]


class OverloadedError(RuntimeError):
    """More records are waiting than the queue holds; the client should retry later (503)."""


@dataclass
class _Job:
    signal: np.ndarray
    mask: np.ndarray
    future: asyncio.Future[Rows]
    enqueued: float


class AdaptiveBatcher:
    """Collects single records from coroutines, runs ``forward`` on stacked batches, hands rows back."""

    def __init__(
        self,
        forward: Forward,
        *,
        max_batch_size: int = 32,
        wait_ms: float = 0.0,
        max_queue: int = 1024,
        observe: BatchObserver | None = None,
    ) -> None:
        self.forward = forward
        self.max_batch_size = max_batch_size
        self.wait_s = wait_ms / 1000.0
        self.max_queue = max_queue
        self.observe = observe
        self._queue: deque[_Job] = deque()
        self._wake: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self._closed = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ecgops-forward")

    async def submit(self, signal: np.ndarray, mask: np.ndarray) -> Rows:
        """The forward's output rows for one canonical record ``(12, t)`` with its ``(12,)`` mask."""
        return (await self.submit_many([signal], mask))[0]

    async def submit_many(self, signals: Sequence[np.ndarray], mask: np.ndarray) -> list[Rows]:
        """The output rows of each of ``signals`` (the windows of one record, sharing its ``(12,)``
        mask), queued together: refused as a whole (:class:`OverloadedError`) when the queue lacks room."""
        if self._closed:
            raise OverloadedError("the model is shutting down; retry later")
        if len(self._queue) + len(signals) > self.max_queue:
            raise OverloadedError(
                f"{len(self._queue)} records are already waiting for the model; retry later"
            )
        loop = asyncio.get_running_loop()
        if self._worker is None or self._worker.done() or self._worker.get_loop() is not loop:
            self._wake = asyncio.Event()
            self._worker = loop.create_task(self._run())
        jobs = [_Job(signal, mask, loop.create_future(), time.perf_counter()) for signal in signals]
        self._queue.extend(jobs)
        assert self._wake is not None
        self._wake.set()
        try:
            return list(await asyncio.gather(*(job.future for job in jobs)))
        finally:
            for job in jobs:  # a failed or cancelled request leaves no windows behind for the model
                job.future.cancel()

    async def _run(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        while not self._closed:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:  # close() empties it
                if self.wait_s > 0 and len(self._queue) < self.max_batch_size:
                    delay = self._queue[0].enqueued + self.wait_s - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                jobs = [self._queue.popleft() for _ in range(min(self.max_batch_size, len(self._queue)))]
                jobs = [job for job in jobs if not job.future.done()]  # clients that gave up
                if jobs:
                    await self._dispatch(loop, jobs)

    async def _dispatch(self, loop: asyncio.AbstractEventLoop, jobs: list[_Job]) -> None:
        signals = np.stack([job.signal for job in jobs])
        masks = np.stack([job.mask for job in jobs])
        started = time.perf_counter()
        try:
            out = await loop.run_in_executor(self._executor, self.forward, signals, masks)
        except Exception as exc:
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        if self.observe is not None:
            self.observe(len(jobs), time.perf_counter() - started)
        for i, job in enumerate(jobs):
            if not job.future.done():
                job.future.set_result(tuple(array[i] for array in out))

    def close(self) -> None:
        """Stop taking records: waiting ones are cancelled, new ones refused (503); the batch in the model
        still gets its answer."""
        self._closed = True
        with contextlib.suppress(RuntimeError):  # futures of an event loop that has closed
            for job in self._queue:
                job.future.cancel()
            if self._wake is not None:
                self._wake.set()  # the worker ends after the batch in the model
        self._queue.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)
