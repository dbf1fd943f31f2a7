"""DVC versions of the store in a real git repo with a real local remote, and the registry rows they make."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from components.config import Settings
from components.io.datasets import ingest_and_version, restore_version
from components.io.versioning import current_version
from components.registry import open_registry
from components.workspace import Workspace
from tests.conftest import FIXTURES, QUIET, SAMPLES, cli_env
from tests.ingest.records import broken_drop

ECGOPS = [sys.executable, "-m", "components.cli"]


def _tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_versions_round_trip_bit_exact(workspace: Settings) -> None:
    first = ingest_and_version(Workspace(workspace), SAMPLES, options=QUIET)
    v1 = first.version["md5"]
    assert first.version["changed"] and v1.endswith(".dir")
    assert current_version(Workspace(workspace)) == v1
    assert yaml.safe_load((workspace.workspace / "data.dvc").read_text())["outs"][0]["path"] == "data"
    assert "/data" in (workspace.workspace / ".gitignore").read_text()
    assert any(Path(workspace.resolved_dvc_remote_url).rglob("*")), "nothing was pushed to the remote"
    tree_v1 = _tree_digest(workspace.data_dir)

    unchanged = ingest_and_version(Workspace(workspace), SAMPLES, options=QUIET)
    assert unchanged.version["md5"] == v1 and not unchanged.version["changed"]

    second = ingest_and_version(Workspace(workspace), FIXTURES / "cinc", options=QUIET)
    v2 = second.version["md5"]
    assert v2 != v1
    tree_v2 = _tree_digest(workspace.data_dir)

    registry = open_registry(workspace.resolved_registry_url)
    versions = {v.dvc_md5: v for v in registry.dataset_versions("demo")}
    assert set(versions) == {v1, v2}
    assert versions[v2].parent_md5 == v1 and versions[v1].parent_md5 is None
    assert versions[v2].n_records == versions[v1].n_records + second.ingested

    restore_version(Workspace(workspace), v1[:10])
    assert _tree_digest(workspace.data_dir) == tree_v1
    assert current_version(Workspace(workspace)) == v1

    shutil.rmtree(workspace.workspace / ".dvc" / "cache")  # only the remote has v2 now
    restore_version(Workspace(workspace), v2)
    assert _tree_digest(workspace.data_dir) == tree_v2


def test_cli_ingest_json_strict_and_checkout(workspace: Settings, tmp_path: Path) -> None:
    env = cli_env(workspace)
    drop = tmp_path / "broken"
    expected = broken_drop(drop)
    result = subprocess.run(
        [*ECGOPS, "ingest", str(drop), "--dataset", "site-a", "--json", "--strict"],
        env=env,
        capture_output=True,
        text=True,
        cwd=workspace.workspace,
    )
    assert result.returncode == 1, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["ingested"], summary["quarantined"]) == (1, len(expected))
    assert {q["record"] for q in summary["quarantine_reasons"]} == set(expected)
    version = summary["version"]["md5"]

    result = subprocess.run(
        [*ECGOPS, "ingest", str(FIXTURES / "cinc"), "--dataset", "site-a", "--format", "cinc"],
        env=env,
        capture_output=True,
        text=True,
        cwd=workspace.workspace,
    )
    assert result.returncode == 0, result.stderr
    assert "dataset version" in result.stderr

    result = subprocess.run(
        [*ECGOPS, "data", "checkout", version[:8]], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert current_version(Workspace(workspace)) == version

    result = subprocess.run(
        [*ECGOPS, "data", "checkout", "0123456789abcdef"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 2 and "neither in the local DVC cache nor on the remote" in result.stderr
    assert current_version(Workspace(workspace)) == version


def test_cli_rejects_unknown_format_and_missing_drop(workspace: Settings, tmp_path: Path) -> None:
    env = cli_env(workspace)
    result = subprocess.run(
        [*ECGOPS, "ingest", str(SAMPLES), "--format", "edf"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 2 and "--format must be one of" in result.stderr
    result = subprocess.run(
        [*ECGOPS, "ingest", str(tmp_path / "nope")], env=env, capture_output=True, text=True
    )
    assert result.returncode == 2 and "drop folder not found" in result.stderr


def test_an_unknown_version_is_not_claimed_as_parent(workspace: Settings, tmp_path: Path) -> None:
    """A fresh clone's data.dvc names a version its new registry does not know: versioning still works."""
    first = ingest_and_version(Workspace(workspace), FIXTURES / "cinc", options=QUIET)
    fresh = workspace.model_copy(update={"registry_url": f"sqlite:///{tmp_path / 'fresh-registry.db'}"})
    second = ingest_and_version(Workspace(fresh), SAMPLES, options=QUIET)
    assert second.version["md5"] != first.version["md5"]
    with open_registry(fresh.resolved_registry_url) as registry:
        (recorded,) = registry.dataset_versions("demo")
    assert recorded.dvc_md5 == second.version["md5"] and recorded.parent_md5 is None
