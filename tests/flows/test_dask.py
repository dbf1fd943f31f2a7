"""The Dask task runner (prefect-dask): retrain's data stages on a local cluster of 2 worker processes,
one dataset's ingest and validation sharded over both workers, with the thread runner's outcome."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from uuid import UUID

import pandas as pd
import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL, temporary_settings

from components.config import Settings
from components.io.store import DatasetStore
from tests.conftest import SAMPLES
from tests.flows.conftest import TINY, flow_env, new_workspace

pytestmark = pytest.mark.slow

#: retrain's data stages, as retrain wires them, with compute.task_runner: dask from params.yaml
DRIVER = """
import json, os, sys
from prefect import flow
from components.workspace import Workspace
from components.orchestration.runners import dask_cluster, task_runner
from flows.data import ingest_flow, validate_flow, version_flow

@flow
def data_stages(drop: str) -> dict:
    compute = Workspace.current().params.compute
    with dask_cluster(compute) as address:
        ingest = ingest_flow.with_options(task_runner=task_runner(address))(drop)
        validation = validate_flow.with_options(task_runner=task_runner(address))("demo")
        version = version_flow.with_options(task_runner=task_runner(address))("demo", validation.value)
    return {"driver": os.getpid(), "address": address, "ingest": ingest.value.to_dict(),
            "validation": validation.value.to_dict(), "version": version.value.to_dict()}

if __name__ == "__main__":
    print(json.dumps(data_stages(sys.argv[1]), default=str))
"""


def run_data_stages(root: Path, server: str, compute: dict[str, Any]) -> tuple[Settings, dict[str, Any]]:
    """The driver in a fresh workspace under ``root`` with ``compute:`` from params.yaml."""
    settings = new_workspace(root)
    (settings.workspace / "params.yaml").write_text(yaml.safe_dump(TINY | {"compute": compute}))
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, str(SAMPLES)],
        env=flow_env(settings, server, root),
        cwd=settings.workspace,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return settings, json.loads(done.stdout.strip().splitlines()[-1])


def stored(settings: Settings) -> tuple[pd.DataFrame, dict[str, bytes], pd.DataFrame]:
    """The store an ingest left, without the ingest's id and times: manifest, shard bytes, quarantine."""
    root = settings.data_dir / "demo"
    store = DatasetStore.open(root)
    run_columns = ["ingest_id", "ingested_at", "detected_at"]
    shards = {p.name: p.read_bytes() for p in sorted((root / "signals").glob("shard-*.npy"))}
    return (
        store.manifest.drop(columns=run_columns, errors="ignore"),
        shards,
        store.quarantine.drop(columns=run_columns, errors="ignore"),
    )


def test_data_stages_shard_over_a_two_worker_dask_cluster(tmp_path: Path, prefect_server: str) -> None:
    # 4 ingest shards (one 128-record chunk each) and 4 feature shards of 100 records for 393 records
    dask = {"task_runner": "dask", "dask_workers": 2, "shard_records": 100}
    settings, result = run_data_stages(tmp_path / "dask", prefect_server, dask)
    driver = result["driver"]
    assert result["address"].startswith("tcp://")

    # ingest: the flow's process wrote the store; every shard's records were prepared on a Dask worker
    ingest = result["ingest"]
    assert ingest["ran_on"]["pid"] == driver and ingest["ran_on"]["dask_worker"] is None
    assert len(ingest["shards"]) == 4
    assert all(s["dask_worker"] and s["pid"] != driver for s in ingest["shards"]), ingest["shards"]
    assert len({s["dask_worker"] for s in ingest["shards"]}) == 2, ingest["shards"]
    assert ingest["ingested"] == 393

    # validation: features extracted in 4 shards on both workers, the suites once in the flow's process
    validation = result["validation"]
    shards = validation["feature_shards"]
    assert len(shards) == 4 and all(s["dask_worker"] and s["pid"] != driver for s in shards), shards
    assert len({s["dask_worker"] for s in shards}) == 2, shards
    assert validation["verdict"] in {"pass", "warn"}
    assert Path(validation["paths"]["summary_html"]).is_file()
    assert json.loads(Path(validation["paths"]["result_json"]).read_text())["feature_shards"] == shards

    # every shard is a Prefect task run, visible in the UI under its stage's name
    with temporary_settings(updates={PREFECT_API_URL: prefect_server}), get_client(sync_client=True) as api:
        for stage, ran in (("ingest", ingest["shards"]), ("validate", shards)):
            runs = [api.read_task_run(UUID(s["task_run_id"])) for s in ran]
            assert [r.name for r in runs] == [f"{stage}-shard-{n}" for n in range(4)]
            assert all(r.state is not None and r.state.is_completed() for r in runs)

    # the rest of the stages still run as tasks on the cluster
    assert result["version"]["ran_on"]["dask_worker"] and result["version"]["ran_on"]["pid"] != driver

    # the outcome is the thread runner's: the same store bit for bit, features, verdict and quarantine
    reference, expected = run_data_stages(tmp_path / "thread", prefect_server, {"task_runner": "thread"})
    assert expected["ingest"]["shards"] == [] and expected["validation"]["feature_shards"] == []
    here, there = stored(settings), stored(reference)
    pd.testing.assert_frame_equal(here[0], there[0])
    assert here[1] == there[1]
    pd.testing.assert_frame_equal(here[2], there[2])
    counts = ("seen", "ingested", "duplicates", "quarantined", "split_counts")
    assert {k: ingest[k] for k in counts} == {k: expected["ingest"][k] for k in counts}
    for name in ("features.parquet", "lead_features.parquet"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(Path(validation["paths"]["report_dir"]) / name),
            pd.read_parquet(Path(expected["validation"]["paths"]["report_dir"]) / name),
            check_exact=True,
        )
    same = ("verdict", "failed", "n_records", "n_quarantined", "n_rejected", "content_fingerprint")
    assert {k: validation[k] for k in same} == {k: expected["validation"][k] for k in same}
    pd.testing.assert_frame_equal(
        pd.read_parquet(validation["paths"]["quarantine"]),
        pd.read_parquet(expected["validation"]["paths"]["quarantine"]),
    )
