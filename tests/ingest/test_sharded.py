"""Ingest with its per-record work in shards (a ``Sharding``) stores exactly what the fork pool stores:
the same manifest, the same signal bytes, the same quarantine — in-process, and on a real Dask cluster."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from components.config import IngestParams, Settings
from components.io.ingest import IngestOptions, IngestSummary, ingest
from components.io.sharding import Sharding
from components.io.store import DatasetStore
from tests.conftest import SAMPLES, ingest_workspace
from tests.ingest.records import broken_drop, copy_record, ptbxl_record

#: columns that name the ingest run rather than the data
RUN_COLUMNS = ["ingest_id", "ingested_at", "detected_at"]
#: small chunks and shards so that shards, slots and shard files all have several boundaries
PARAMS = IngestParams(workers=2, chunk_records=2, shard_max_records=6)


def mixed_drop(folder: Path) -> Path:
    """Real records: good ones, duplicates (inside a chunk and across shards) and broken ones."""
    broken_drop(folder)
    for name, ecg_id in (
        ("r1", "00003"),
        ("r1_again", "00003"),
        ("r2", "00004"),
        ("r3", "00005"),
        ("r4", "00006"),
        ("r2_again", "00004"),
        ("r5", "00007"),
        ("r6", "00008"),
    ):
        copy_record(ptbxl_record(ecg_id), folder, name)
    return folder


def stored(root: Path) -> tuple[pd.DataFrame, dict[str, bytes], pd.DataFrame]:
    """What an ingest leaves: manifest and quarantine without the run's id and times, shard bytes."""
    store = DatasetStore.open(root)
    manifest = store.manifest.drop(columns=RUN_COLUMNS, errors="ignore")
    quarantine = store.quarantine.drop(columns=RUN_COLUMNS, errors="ignore")
    shards = {p.name: p.read_bytes() for p in sorted((root / "signals").glob("shard-*.npy"))}
    return manifest, shards, quarantine


def counts(summary: IngestSummary) -> dict[str, Any]:
    keep = ("seen", "ingested", "duplicates", "quarantined", "split_counts", "quarantine_reasons")
    return {k: v for k, v in summary.to_dict().items() if k in keep} | {
        "duplicate_records": summary.duplicate_records
    }


def ingest_into(
    workspace: Settings, name: str, drop: Path, sharding: Sharding[Any, Any] | None = None
) -> tuple[IngestSummary, Path]:
    settings = workspace.model_copy(update={"workspace": workspace.workspace / name})
    options = IngestOptions(progress=False, sharding=sharding)
    summary = ingest(ingest_workspace(settings, PARAMS), drop, dataset="d", options=options)
    return summary, settings.data_dir / "d"


def assert_same_store(a: Path, b: Path) -> None:
    manifest_a, shards_a, quarantine_a = stored(a)
    manifest_b, shards_b, quarantine_b = stored(b)
    pd.testing.assert_frame_equal(manifest_a, manifest_b)
    assert list(shards_a) == list(shards_b)
    for name in shards_a:
        assert shards_a[name] == shards_b[name], name  # bit for bit, header included
    pd.testing.assert_frame_equal(quarantine_a, quarantine_b)


@pytest.mark.parametrize("drop_name", ["samples", "mixed"])
def test_sharded_preparation_stores_what_the_pool_stores(
    workspace: Settings, tmp_path: Path, drop_name: str
) -> None:
    drop = SAMPLES if drop_name == "samples" else mixed_drop(tmp_path / "drop")
    pool, pool_root = ingest_into(workspace, "pool", drop)
    assert pool.ingested > 0
    if drop_name == "mixed":
        assert pool.duplicates == 2 and pool.quarantined >= 3
    shard_sizes = []
    for shard_records in (1, 5, 10_000):  # one chunk per shard, two (rounded down), everything in one
        sizes: list[int] = []

        def in_process(
            fn: Callable[[list[Any]], list[Any]], shards: Iterable[list[Any]], sizes: list[int] = sizes
        ) -> Iterator[list[Any]]:
            for shard in shards:
                sizes.append(len(shard))
                yield fn(shard)

        summary, root = ingest_into(
            workspace, f"map-{shard_records}", drop, Sharding(in_process, shard_records)
        )
        assert counts(summary) == counts(pool)
        assert_same_store(pool_root, root)
        shard_sizes.append(sizes)
    assert set(shard_sizes[0]) == {1} and max(shard_sizes[1]) == 2 and len(shard_sizes[2]) == 1


def test_a_failing_shard_fails_the_ingest_and_leaves_the_store_as_it_was(
    workspace: Settings, tmp_path: Path
) -> None:
    drop = mixed_drop(tmp_path / "drop")
    _, root = ingest_into(workspace, "failing", SAMPLES)
    before = stored(root)

    def second_shard_fails(fn: Callable[[Any], Any], shards: Iterable[Any]) -> Iterator[Any]:
        for number, shard in enumerate(shards):
            if number == 1:
                raise RuntimeError("worker lost")
            yield fn(shard)

    with pytest.raises(RuntimeError, match="worker lost"):
        ingest_into(workspace, "failing", drop, Sharding(second_shard_fails, 2))
    after = stored(root)
    pd.testing.assert_frame_equal(before[0], after[0])
    assert before[1] == after[1]  # the failed ingest's shard files are gone, the others untouched
    pd.testing.assert_frame_equal(before[2], after[2])


@pytest.mark.slow
def test_shards_on_a_dask_cluster_store_what_the_pool_stores(workspace: Settings, tmp_path: Path) -> None:
    from distributed import Client, LocalCluster

    from components.process_env import environ_restored

    drop = mixed_drop(tmp_path / "drop")
    _, pool_root = ingest_into(workspace, "pool", drop)
    workers: set[str] = set()
    with (
        environ_restored(),  # the nannies export their workers' settings into this process's environment
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):

        def on_cluster(fn: Callable[[list[Any]], list[Any]], shards: Iterable[list[Any]]) -> Iterator[Any]:
            futures = [client.submit(_where(fn), shard, pure=False) for shard in shards]
            for future in futures:
                value, worker = future.result()
                workers.add(worker)
                yield value

        summary, root = ingest_into(workspace, "dask", drop, Sharding(on_cluster, 2))
    assert summary.ingested > 0
    assert_same_store(pool_root, root)
    assert len(workers) == 2, workers


def _where(fn: Callable[[Any], Any]) -> Callable[[Any], tuple[Any, str]]:
    def run(item: Any) -> tuple[Any, str]:
        from distributed import get_worker

        return fn(item), get_worker().address

    return run


#: an ingest with 2 reader processes under Prefect's SIGTERM handler (installed by every flow run), from
#: a thread as a flow's thread task runner runs it (forked from a thread, the workers run the handler)
UNDER_PREFECT = """
import sys, threading
from pathlib import Path
from components.config import Settings, parse_params
from components.io.ingest import IngestOptions, ingest
from components.workspace import Workspace
from prefect.utilities.engine import capture_sigterm

root = Path(sys.argv[1])
settings = Settings(workspace=root, registry_url=f"sqlite:///{root}/r.db", patient_salt="x")
workspace = Workspace(settings, parse_params({"ingest": {"workers": 2, "chunk_records": 16}}))
done = []
def run():
    done.append(ingest(workspace, Path(sys.argv[2]), options=IngestOptions(progress=False)))
with capture_sigterm():
    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
print(done[0].ingested)
"""


def test_pool_shutdown_under_prefect_prints_no_traceback(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", UNDER_PREFECT, str(tmp_path), str(SAMPLES)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "393"
    assert "Traceback" not in done.stderr and "TerminationSignal" not in done.stderr, done.stderr
