"""The main job under real Prefect (its temporary local server): `ecgops run` ingests and versions a drop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from components.config import Settings
from components.io.versioning import current_version
from components.registry import open_registry
from tests.conftest import FIXTURES


@pytest.mark.slow
def test_run_flow_end_to_end(workspace: Settings, tmp_path: Path) -> None:
    env = {**os.environ, "ECGOPS_WORKSPACE": str(workspace.workspace),
           "ECGOPS_REGISTRY_URL": workspace.resolved_registry_url,
           "ECGOPS_DVC_REMOTE_URL": workspace.resolved_dvc_remote_url, "ECGOPS_PATIENT_SALT": "flow-salt",
           "PREFECT_HOME": str(tmp_path / "prefect")}
    env.pop("PREFECT_API_URL", None)
    result = subprocess.run([sys.executable, "-m", "components.cli", "run", "--drop", str(FIXTURES / "cinc"),
                             "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout)
    ingest = outcome["ingest"]
    assert (ingest["format"], ingest["ingested"], ingest["quarantined"]) == ("cinc", 6, 0)
    assert ingest["version"]["md5"] == current_version(workspace)
    versions = open_registry(workspace.resolved_registry_url).dataset_versions("demo")
    assert [v.dvc_md5 for v in versions] == [ingest["version"]["md5"]]
    assert "Finished in state Completed" in result.stderr
