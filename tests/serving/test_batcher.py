"""Adaptive batching: concurrent records share forwards, each gets its own rows back, failures reach all."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from components.serving.batcher import AdaptiveBatcher, OverloadedError


class SlowSum:
    """A stand-in forward that takes a while and records the batch sizes it saw."""

    def __init__(self, delay_s: float = 0.02, fail: bool = False) -> None:
        self.delay_s = delay_s
        self.fail = fail
        self.sizes: list[int] = []
        self.threads: set[str] = set()

    def __call__(self, signals: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Two outputs, as a task model's forward: a row per record of each."""
        self.sizes.append(len(signals))
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay_s)
        if self.fail:
            raise RuntimeError("model exploded")
        return signals.sum(axis=(1, 2))[:, None] + masks.sum(axis=1)[:, None], signals[:, :2, 0]


def _record(i: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full((12, 10), float(i), dtype=np.float32), np.ones(12, dtype=bool)


def test_concurrent_records_are_batched_and_routed_back() -> None:
    forward = SlowSum()
    batcher = AdaptiveBatcher(forward, max_batch_size=8)

    async def main() -> list[tuple[np.ndarray, ...]]:
        return await asyncio.gather(*(batcher.submit(*_record(i)) for i in range(20)))

    results = asyncio.run(main())
    batcher.close()
    assert [float(r[0][0]) for r in results] == [i * 120.0 + 12 for i in range(20)]
    assert [r[1].tolist() for r in results] == [[float(i), float(i)] for i in range(20)]
    assert forward.sizes == [8, 8, 4]  # all 20 were waiting when the model first became free
    assert forward.threads == {next(iter(forward.threads))} and "ecgops-forward" in next(
        iter(forward.threads)
    )


def test_a_lone_record_is_not_kept_waiting_and_wait_ms_gathers_company() -> None:
    eager, patient = SlowSum(delay_s=0.0), SlowSum(delay_s=0.0)
    eager_batcher = AdaptiveBatcher(eager, max_batch_size=8)
    # the second record comes 50 ms after the first; a 1 s window holds it even on a loaded machine
    patient_batcher = AdaptiveBatcher(patient, max_batch_size=8, wait_ms=1000)

    async def staggered(batcher: AdaptiveBatcher) -> float:
        started = time.perf_counter()
        first = asyncio.ensure_future(batcher.submit(*_record(0)))
        await asyncio.sleep(0.05)
        await asyncio.gather(first, batcher.submit(*_record(1)))
        return time.perf_counter() - started

    asyncio.run(staggered(eager_batcher))
    elapsed = asyncio.run(staggered(patient_batcher))
    assert eager.sizes == [1, 1]
    assert patient.sizes == [2] and elapsed >= 1.0


def test_a_failed_forward_fails_every_record_of_its_batch_and_overload_is_refused() -> None:
    batcher = AdaptiveBatcher(SlowSum(fail=True), max_batch_size=4)

    async def failing() -> list[object]:
        return await asyncio.gather(*(batcher.submit(*_record(i)) for i in range(3)), return_exceptions=True)

    assert all(isinstance(r, RuntimeError) for r in asyncio.run(failing()))
    small = AdaptiveBatcher(SlowSum(delay_s=0.1), max_batch_size=1, max_queue=2)

    async def flood() -> list[object]:
        return await asyncio.gather(*(small.submit(*_record(i)) for i in range(6)), return_exceptions=True)

    outcomes = asyncio.run(flood())
    assert any(isinstance(o, OverloadedError) for o in outcomes)
    assert any(isinstance(o, tuple) for o in outcomes)
    batcher.close()
    small.close()


def test_the_windows_of_a_record_are_queued_together_and_refused_together() -> None:
    forward = SlowSum(delay_s=0.02)
    batcher = AdaptiveBatcher(forward, max_batch_size=4, max_queue=5)
    windows = [_record(i)[0] for i in range(6)]
    mask = np.ones(12, dtype=bool)

    async def main() -> tuple[list[tuple[np.ndarray, ...]], object]:
        done = await batcher.submit_many(windows[:5], mask)
        too_many = await asyncio.gather(batcher.submit_many(windows, mask), return_exceptions=True)
        return done, too_many[0]

    done, refused = asyncio.run(main())
    batcher.close()
    assert [float(rows[0][0]) for rows in done] == [i * 120.0 + 12 for i in range(5)]
    assert forward.sizes == [4, 1]  # windows share batches like records
    assert isinstance(refused, OverloadedError)  # 6 windows do not fit a queue of 5: none is queued


def test_a_client_that_gave_up_is_skipped() -> None:
    forward = SlowSum(delay_s=0.05)
    batcher = AdaptiveBatcher(forward, max_batch_size=8)

    async def main() -> tuple[np.ndarray, ...]:
        first = asyncio.ensure_future(batcher.submit(*_record(0)))
        await asyncio.sleep(0.01)  # first is in the model; the next two queue
        gone = asyncio.ensure_future(batcher.submit(*_record(1)))
        kept = asyncio.ensure_future(batcher.submit(*_record(2)))
        await asyncio.sleep(0)
        gone.cancel()
        await first
        return await kept

    assert float(asyncio.run(main())[0][0]) == 2 * 120.0 + 12
    assert forward.sizes == [1, 1]
    batcher.close()


@pytest.mark.parametrize("size", [1, 3])
def test_batch_sizes_are_observed(size: int) -> None:
    seen: list[tuple[int, float]] = []
    batcher = AdaptiveBatcher(
        SlowSum(delay_s=0.0), max_batch_size=size, observe=lambda n, s: seen.append((n, s))
    )

    async def main() -> None:
        await asyncio.gather(*(batcher.submit(*_record(i)) for i in range(3)))

    asyncio.run(main())
    batcher.close()
    assert sum(n for n, _ in seen) == 3 and all(n <= size and s >= 0 for n, s in seen)


def test_closing_cancels_waiting_records_and_refuses_new_ones() -> None:
    in_forward, release = threading.Event(), threading.Event()

    def held_forward(signals: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray]:
        in_forward.set()
        release.wait(timeout=30)
        return (signals.sum(axis=(1, 2))[:, None],)

    batcher = AdaptiveBatcher(held_forward, max_batch_size=1)

    async def main() -> tuple[object, object, object]:
        first = asyncio.ensure_future(batcher.submit(*_record(0)))
        queued = asyncio.ensure_future(batcher.submit(*_record(1)))
        assert await asyncio.to_thread(in_forward.wait, 30)  # the first is in the model, the second waits
        batcher.close()
        release.set()
        late = await asyncio.gather(batcher.submit(*_record(2)), return_exceptions=True)
        outcomes = await asyncio.wait_for(asyncio.gather(first, queued, return_exceptions=True), 30)
        return outcomes[0], outcomes[1], late[0]

    in_model, waiting, late = asyncio.run(main())
    assert isinstance(in_model, tuple)  # the batch in the model still completes
    assert isinstance(waiting, asyncio.CancelledError)
    assert isinstance(late, OverloadedError)
