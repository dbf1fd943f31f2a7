"""Where the flows' tasks run: threads in this process, or a Dask cluster (prefect-dask).

With ``compute.task_runner: dask`` a run starts one local cluster (``compute.dask_workers`` processes) or
connects to ``compute.dask_address``; every stage flow of the run submits its tasks to that same cluster.
Workers of an existing cluster need ``distributed.worker.daemon: false`` in their Dask configuration
(ingest starts reader processes). The workers reach the Prefect API through ``PREFECT_API_URL`` (see
:mod:`components.orchestration.server`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from components.orchestration.params import ComputeParams


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

    # ingest runs its own reader processes: Dask's workers must be allowed to have children; and each
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
    with LocalCluster(
        n_workers=compute.dask_workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
    ) as cluster:
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
