"""The DVC remote is unreachable while a dataset version is made: nothing is half-versioned (``data.dvc``
keeps naming the last version the remote holds, the registry gets no version row), the error names the
remote, and the next versioning completes with the right parent. A process killed between ``dvc add`` and
the end of ``dvc push`` (held there by a remote that accepts connections and never answers) is undone the
same way by the next one."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.config import IngestParams, Settings
from components.io.datasets import version_dataset
from components.io.ingest import ingest
from components.io.versioning import DVC_FILE, VersioningError, current_version, journal_path
from components.registry import open_registry
from components.workspace import Workspace
from tests.conftest import FIXTURES, QUIET, cli_env, ingest_workspace
from tests.faults.conftest import wait_for

PARAMS = IngestParams(target_fs=500, workers=1)
VERSION = """
import sys
from pathlib import Path
from components.io.datasets import version_dataset
from components.workspace import Workspace
version_dataset(Workspace.current(), "demo")
"""


def _set_remote(settings: Settings, url: str) -> None:
    """Point the workspace's default DVC remote (in ``.dvc/config.local``) at ``url``."""
    subprocess.run(
        [sys.executable, "-m", "dvc", "remote", "modify", "--local", "ecgops-local", "url", url],
        cwd=settings.workspace,
        check=True,
        capture_output=True,
    )


def _registered(settings: Settings) -> list[tuple[str, str | None]]:
    with open_registry(settings.resolved_registry_url) as registry:
        return [(v.dvc_md5, v.parent_md5) for v in sorted(registry.dataset_versions(), key=lambda v: v.id)]


def _on_remote(settings: Settings, md5: str) -> bool:
    digest = md5.removesuffix(".dir")
    return (
        Path(settings.resolved_dvc_remote_url) / "files" / "md5" / digest[:2] / f"{digest[2:]}.dir"
    ).is_file()


@pytest.fixture
def versioned(workspace: Settings) -> tuple[Settings, str]:
    """Five real records ingested and versioned (remote reachable), then five more ingested."""
    ws = ingest_workspace(workspace, PARAMS)
    ingest(ws, FIXTURES / "ptbxl500", options=QUIET)
    first = version_dataset(ws, "demo").md5
    ingest(ws, FIXTURES / "cinc", options=QUIET)
    return workspace, first


def test_an_unreachable_remote_versions_nothing_and_the_next_version_completes(
    versioned: tuple[Settings, str], tmp_path: Path
) -> None:
    settings, first = versioned
    ws = Workspace(settings)
    dvc_file = settings.workspace / DVC_FILE
    recorded = dvc_file.read_text()
    not_a_dir = tmp_path / "not-a-directory"
    not_a_dir.write_text("a file where the remote's folder should be\n")
    _set_remote(settings, str(not_a_dir / "remote"))
    with pytest.raises(VersioningError, match=r"dvc push to the DVC remote .*not-a-directory.* failed"):
        version_dataset(ws, "demo")
    assert dvc_file.read_text() == recorded and current_version(ws) == first
    assert _registered(settings) == [(first, None)]
    assert not journal_path(ws).exists()

    _set_remote(settings, settings.resolved_dvc_remote_url)
    second = version_dataset(ws, "demo")
    assert second.changed and second.md5 != first and _on_remote(settings, second.md5)
    assert _registered(settings) == [(first, None), (second.md5, first)]


def test_a_process_killed_during_the_push_is_undone_by_the_next_version(
    versioned: tuple[Settings, str],
) -> None:
    settings, first = versioned
    ws = Workspace(settings)
    dvc_file = settings.workspace / DVC_FILE
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        _set_remote(settings, f"http://127.0.0.1:{silent.getsockname()[1]}/remote")
        env = cli_env(settings, ECGOPS_PATIENT_SALT="test-salt")
        stuck = subprocess.Popen(
            [sys.executable, "-c", VERSION], env=env, start_new_session=True, stderr=subprocess.PIPE
        )
        try:
            wait_for(lambda: current_version(ws) not in (first, None), "dvc add rewriting data.dvc")
            assert stuck.poll() is None, "the push returned although the remote never answers"
        finally:
            os.killpg(stuck.pid, signal.SIGKILL)
            stuck.wait()
    half = current_version(ws)
    assert half != first and not _on_remote(settings, str(half))  # what the kill left: not on the remote
    assert journal_path(ws).is_file() and _registered(settings) == [(first, None)]

    _set_remote(settings, settings.resolved_dvc_remote_url)
    second = version_dataset(ws, "demo")
    assert (second.md5, second.previous) == (half, first) and _on_remote(settings, second.md5)
    assert _registered(settings) == [(first, None), (second.md5, first)]
    assert not journal_path(ws).exists()
    assert yaml.safe_load(dvc_file.read_text())["outs"][0]["md5"] == second.md5


def test_a_store_that_is_the_current_version_needs_no_remote(
    versioned: tuple[Settings, str], tmp_path: Path
) -> None:
    """``data/`` exactly as ``data.dvc`` names it is that version already: no ``dvc add``, no push, so an
    unreachable remote does not matter, and the registry keeps one row per version."""
    settings, first = versioned
    ws = Workspace(settings)
    second = version_dataset(ws, "demo")
    not_a_dir = tmp_path / "not-a-directory"
    not_a_dir.write_text("a file where the remote's folder should be\n")
    _set_remote(settings, str(not_a_dir / "remote"))
    again = version_dataset(ws, "demo")
    assert (again.md5, again.changed, again.previous) == (second.md5, False, second.md5)
    assert _registered(settings) == [(first, None), (second.md5, first)]
