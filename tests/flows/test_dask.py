"""The Dask task runner (prefect-dask): retrain's data stages on a local cluster of 2 worker processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.config import IngestParams
from components.io.ingest import ingest
from components.io.store import DatasetStore
from tests.conftest import SAMPLES
from tests.flows.conftest import TINY, flow_env, new_workspace

pytestmark = pytest.mark.slow

#: retrain's data stages, as retrain wires them, with compute.task_runner: dask from params.yaml
DRIVER = """
import json, os, sys
from prefect import flow
from components.orchestration.params import workspace_params
from components.orchestration.runners import dask_cluster, task_runner
from flows.data import ingest_flow, validate_flow, version_flow

@flow
def data_stages(drop: str) -> dict:
    _, compute = workspace_params()
    with dask_cluster(compute) as address:
        ingest = ingest_flow.with_options(task_runner=task_runner(address))(drop)
        validation = validate_flow.with_options(task_runner=task_runner(address))("demo")
        version = version_flow.with_options(task_runner=task_runner(address))("demo", validation.value)
    return {"driver": os.getpid(), "address": address, "ingest": ingest.value,
            "validation": validation.value.to_dict(), "version": version.value}

if __name__ == "__main__":
    print(json.dumps(data_stages(sys.argv[1]), default=str))
"""


def test_data_stages_run_on_a_two_worker_dask_cluster(tmp_path: Path, prefect_server: str) -> None:
    settings = new_workspace(tmp_path)
    params = TINY | {"compute": {"task_runner": "dask", "dask_workers": 2}}
    (settings.workspace / "params.yaml").write_text(yaml.safe_dump(params))
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, str(SAMPLES)],
        env=flow_env(settings, prefect_server, tmp_path),
        cwd=settings.workspace,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["address"].startswith("tcp://")
    for stage in ("ingest", "version"):
        ran_on = result[stage]["ran_on"]
        assert ran_on["dask_worker"] and ran_on["pid"] != result["driver"], (stage, ran_on)
    assert result["ingest"]["ingested"] == 393
    assert result["validation"]["verdict"] in {"pass", "warn"}
    assert Path(result["validation"]["paths"]["summary_html"]).is_file()
    # the same records as an ingest in this process stores from the same drop
    reference = new_workspace(tmp_path / "reference")
    ingest(SAMPLES, settings=reference, params=IngestParams(workers=1), progress=False)
    here = DatasetStore.open(settings.data_dir / "demo").manifest
    there = DatasetStore.open(reference.data_dir / "demo").manifest
    assert sorted(here["content_hash"]) == sorted(there["content_hash"])
