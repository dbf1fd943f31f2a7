"""The parts of the orchestration that need no flow: the workspace lock, cache keys, fingerprints."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from components.config import IngestParams, Settings
from components.io.ingest import IngestSummary, ingest
from components.orchestration import cache
from components.orchestration.fingerprints import code_version, drop_fingerprint, store_state
from components.orchestration.outcomes import IngestOutcome
from components.registry import open_registry
from components.runs.lock import WorkspaceBusyError, holder, workspace_lock
from tests.conftest import FIXTURES, QUIET, ingest_workspace

HOLD = """
import sys, time
from pathlib import Path
from components.config import Settings
from components.runs.lock import workspace_lock
with workspace_lock(Settings(workspace=Path(sys.argv[1])), timeout_s=0, owner={"flow_run_id": "run-A"}):
    print("held", flush=True)
    time.sleep(600)
"""


def _hold_in_another_process(settings: Settings) -> subprocess.Popen[str]:
    holder_process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(settings.workspace)], stdout=subprocess.PIPE, text=True
    )
    assert holder_process.stdout is not None and holder_process.stdout.readline().strip() == "held"
    return holder_process


def test_a_second_holder_waits_then_fails_and_a_killed_holder_frees_the_workspace(
    workspace: Settings,
) -> None:
    other = _hold_in_another_process(workspace)
    try:
        assert holder(workspace)["flow_run_id"] == "run-A"  # type: ignore[index]
        told: list[object] = []
        started = time.monotonic()
        with (
            pytest.raises(WorkspaceBusyError, match=rf"busy: run by pid {other.pid} .*run-A"),
            workspace_lock(workspace, timeout_s=1.0, on_wait=told.append),
        ):
            pass
        assert time.monotonic() - started >= 1.0 and len(told) == 1
    finally:
        os.kill(other.pid, signal.SIGKILL)  # no cleanup: the kernel releases the lock
        other.wait()
    with workspace_lock(workspace, timeout_s=0, owner={"flow_run_id": "run-B"}):
        assert holder(workspace)["flow_run_id"] == "run-B"  # type: ignore[index]
        with workspace_lock(workspace, timeout_s=0):  # re-entrant in one process (nested stage flows)
            pass


@pytest.fixture
def small_store(workspace: Settings, tmp_path: Path) -> tuple[Settings, Path]:
    """Five real PTB-XL records at 500 Hz ingested into ``demo``; the drop is a copy we can change."""
    drop = tmp_path / "drop"
    shutil.copytree(FIXTURES / "ptbxl500", drop)
    (workspace.workspace / "params.yaml").write_text(yaml.safe_dump({"ingest": {"target_fs": 500}}))
    ingest(ingest_workspace(workspace, IngestParams(target_fs=500, workers=1)), drop, options=QUIET)
    return workspace, drop


def _key(stage: str, settings: Settings, **inputs: object) -> str:
    inputs_fn = {
        "ingest": cache.ingest_inputs,
        "validate": cache.validate_inputs,
        "pretrain": cache.pretrain_inputs,
    }[stage]
    return cache.stage_cache(stage, inputs_fn).key(settings, dict(inputs))


def test_ingest_key_follows_the_drop_and_the_parameters(small_store: tuple[Settings, Path]) -> None:
    settings, drop = small_store
    first = _key("ingest", settings, drop=str(drop), dataset=None)
    assert _key("ingest", settings, drop=str(drop), dataset="demo") == first
    (drop / "records500" / "00000" / "extra.hea").write_text("extra 1 500 5000\n")
    added = _key("ingest", settings, drop=str(drop), dataset=None)
    assert added != first
    (settings.workspace / "params.yaml").write_text(
        yaml.safe_dump({"ingest": {"target_fs": 500, "target_duration_s": 5.0}})
    )
    assert _key("ingest", settings, drop=str(drop), dataset=None) not in {first, added}
    with pytest.raises(FileNotFoundError):
        drop_fingerprint(drop / "missing")


def test_a_cached_ingest_counts_only_while_the_store_is_as_it_left_it(
    small_store: tuple[Settings, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, _ = small_store
    monkeypatch.setattr(cache, "get_settings", lambda: settings)
    earlier = IngestSummary(dataset="demo", drop="drop", format="ptbxl", ingest_id="earlier")
    summary = IngestOutcome(earlier, store_state(settings, "demo"), ran_on={})
    assert cache.ingest_still_current(summary)
    ingest(
        ingest_workspace(settings, IngestParams(target_fs=500, workers=1)), FIXTURES / "cinc", options=QUIET
    )
    assert not cache.ingest_still_current(summary)


def test_validate_key_follows_store_content_and_steward_decisions(small_store: tuple[Settings, Path]) -> None:
    settings, _ = small_store
    first = _key("validate", settings, dataset="demo")
    assert _key("validate", settings, dataset="demo") == first
    with open_registry(settings.resolved_registry_url) as registry:
        registry.record_steward_decision(
            dataset="demo", record_id="0" * 16, decision="reject", note="test", reviewer="steward"
        )
    decided = _key("validate", settings, dataset="demo")
    assert decided != first
    ingest(
        ingest_workspace(settings, IngestParams(target_fs=500, workers=1)), FIXTURES / "cinc", options=QUIET
    )
    assert _key("validate", settings, dataset="demo") not in {first, decided}


def test_pretrain_key_follows_dataset_version_and_parameters(small_store: tuple[Settings, Path]) -> None:
    settings, _ = small_store
    first = _key("pretrain", settings, dataset="demo", dataset_version="a" * 32)
    assert _key("pretrain", settings, dataset="demo", dataset_version="a" * 32, resume=True) == first
    assert _key("pretrain", settings, dataset="demo", dataset_version="b" * 32) != first
    (settings.workspace / "params.yaml").write_text(
        yaml.safe_dump({"ingest": {"target_fs": 500}, "pretrain": {"seed": 7}})
    )
    seeded = _key("pretrain", settings, dataset="demo", dataset_version="a" * 32)
    assert seeded != first
    (settings.workspace / "params.yaml").write_text(
        yaml.safe_dump({"ingest": {"target_fs": 500}, "pretrain": {"seed": 7, "recipe": "cape"}})
    )
    assert _key("pretrain", settings, dataset="demo", dataset_version="a" * 32) not in {first, seeded}


def test_code_versions_are_per_stage_and_stable() -> None:
    stages = ("ingest", "validate", "version", "pretrain", "finetune", "evaluate", "package")
    versions = {stage: code_version(stage) for stage in stages}
    assert len(set(versions.values())) == len(stages)
    code_version.cache_clear()
    assert {stage: code_version(stage) for stage in stages} == versions
