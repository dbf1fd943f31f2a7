"""Where the flows' tasks run: threads in this process, or a Dask cluster (prefect-dask).

With ``compute.task_runner: dask`` a run starts one local cluster (``compute.dask_workers`` processes) or
connects to ``compute.dask_address``; every stage flow of the run submits its tasks to that same cluster.
Workers of an existing cluster need ``distributed.worker.daemon: false`` in their Dask configuration
(training tasks may start data-loader processes) and the workspace's filesystem at the same path (the
shards read the drop and the store, and write signals into the store's shard files). The workers reach
the Prefect API through ``PREFECT_API_URL`` (see :mod:`components.orchestration.server`).

On a Dask runner, ingest and validation of one dataset are sharded: :class:`TaskShards` is the ordered
``map`` of the :class:`~components.io.sharding.Sharding` they take; it runs each shard as a Prefect task
(``ingest-shard``, ``validate-shard``, visible in the UI) on the flow's task runner, a few at a time, and
hands the results back in order to the stage, which runs in the flow's process and stays the only
writer.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.futures import PrefectFuture
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from components.process_env import environ_restored
from components.runs.params import ComputeParams

T = TypeVar("T")
R = TypeVar("R")


@contextmanager
def dask_cluster(compute: ComputeParams) -> Iterator[str | None]:
    """The scheduler address of the run's Dask cluster (None with the thread runner)."""
    if compute.task_runner != "dask":
        yield None
        return
    if compute.dask_address:
        yield compute.dask_address
        return
    import dask
    from distributed import LocalCluster

    # tasks may start processes (data loaders): Dask's workers must be allowed to have children; and each
    # worker gets its share of the cores for NumPy/PyTorch (Dask's default is one thread)
    threads = str(max(1, (os.cpu_count() or 1) // compute.dask_workers))
    dask.config.set(
        {
            "distributed.worker.daemon": False,
            "distributed.nanny.pre-spawn-environ": {
                "OMP_NUM_THREADS": threads,
                "MKL_NUM_THREADS": threads,
                "OPENBLAS_NUM_THREADS": threads,
            },
        }
    )
    with (
        environ_restored(),  # the nannies export their workers' settings into this process's environment
        LocalCluster(
            n_workers=compute.dask_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
        ) as cluster,
    ):
        yield cluster.scheduler_address


def task_runner(address: str | None, max_workers: int | None = None) -> TaskRunner[Any]:
    """A task runner for a stage flow: Dask at ``address``, else threads."""
    if address is None:
        return ThreadPoolTaskRunner(max_workers=max_workers)
    from prefect_dask import DaskTaskRunner

    return DaskTaskRunner(address=address)


def worker_identity() -> dict[str, Any]:
    """Where a task runs: the process, and the Dask worker when it runs on one."""
    try:
        from distributed import get_worker

        worker = get_worker().address
    except (ImportError, ValueError):
        worker = None
    return {"pid": os.getpid(), "dask_worker": worker}


def on_dask() -> bool:
    """True inside a flow whose task runner is a Dask one (then the data stages shard their work)."""
    context = FlowRunContext.get()
    if context is None:
        return False
    from prefect_dask import DaskTaskRunner

    return isinstance(context.task_runner, DaskTaskRunner)


class Sealed:
    """A task parameter that Prefect and Dask pass on as it is: both walk lists, tuples, dicts and
    dataclasses looking for futures (Dask even rebuilds tuples, Prefect's ``quote`` included), which
    would cost time on a shard of thousands of record references; neither looks into a plain object."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value


@task(name="shard", cache_policy=NO_CACHE, persist_result=False)
def _shard(fn: Callable[[Any], Any], item: Sealed) -> tuple[Any, dict[str, Any]]:
    """One shard of a stage's work, and where it ran (the Dask worker, and the Prefect task run)."""
    from prefect.runtime import task_run

    return fn(item.value), worker_identity() | {"task_run_id": task_run.get_id()}


class TaskShards:
    """An ordered ``map`` running each item as a Prefect task ``<stage>-shard`` on the current flow's
    task runner (its Dask cluster), at most ``window`` at a time (default: twice the cluster's threads),
    so memory and the ingest's reserved shard slots stay bounded. Results come back in the items' order;
    ``ran_on`` says where each shard ran. A failed shard raises its error when its turn comes."""

    def __init__(self, stage: str, window: int | None = None):
        self.stage = stage
        self.window = window
        self.ran_on: list[dict[str, Any]] = []

    def __call__(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        window = self.window or self._default_window()
        pending: deque[PrefectFuture[tuple[R, dict[str, Any]]]] = deque()
        try:
            for number, item in enumerate(items):
                shard = _shard.with_options(
                    name=f"{self.stage}-shard", task_run_name=f"{self.stage}-shard-{number}"
                )
                pending.append(shard.submit(fn, Sealed(item)))
                if len(pending) >= window:
                    yield self._take(pending)
            while pending:
                yield self._take(pending)
        finally:
            for future in pending:  # the consumer stopped early (an error): drop what is left
                wrapped = getattr(future, "wrapped_future", None)
                if wrapped is not None:
                    wrapped.cancel()

    def _take(self, pending: deque[PrefectFuture[tuple[R, dict[str, Any]]]]) -> R:
        value, where = pending.popleft().result()
        self.ran_on.append(where)
        return value

    @staticmethod
    def _default_window() -> int:
        context = FlowRunContext.get()
        client = getattr(context.task_runner, "client", None) if context else None
        threads = sum(client.nthreads().values()) if client is not None else 1
        return max(2, 2 * threads)
