"""The main job under a real Prefect server: a killed run resumes, two runs at once do not collide, a
re-run reuses everything, every run leaves its artifacts, a blocking validation versions nothing.
(A failing gate is in test_schedule.py: the scheduled run's candidate fails it.)"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest

from components.config import Settings
from components.io.versioning import current_version
from components.registry import open_registry
from components.workspace import Workspace
from tests.flows.conftest import (
    TASK,
    TINY,
    Finished,
    TrainedWorkspace,
    flow_env,
    new_workspace,
    run_flow,
    write_params,
)

pytestmark = pytest.mark.slow


def _winner_and_waiter(trained: TrainedWorkspace) -> tuple[Finished, Finished]:
    for run in trained.runs:
        assert run.returncode == 0, run.stderr[-4000:]
        assert run.result is not None
    waited = [run for run in trained.runs if "waiting for the workspace" in run.stderr]
    assert len(waited) == 1, "exactly one of the two runs waited for the other"
    [winner] = [run for run in trained.runs if run is not waited[0]]
    return winner, waited[0]


def _artifacts(server: str, flow_run_id: str) -> dict[str, Any]:
    """The artifacts a flow run created, by key (from the Prefect API)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    async def read() -> dict[str, Any]:
        async with get_client() as client:
            found = await client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
            )
        return {a.key: a for a in found}

    with temporary_settings(updates={PREFECT_API_URL: server}):
        return asyncio.run(read())


def test_killed_run_resumes_and_concurrent_runs_share_the_workspace(
    trained: TrainedWorkspace, prefect_server: str
) -> None:
    winner, waiter = _winner_and_waiter(trained)
    outcome = winner.result
    assert outcome is not None
    foundation = outcome["foundation"]
    assert foundation["decision"]["action"] == "resume", foundation["decision"]
    assert foundation["resumed_from_epoch"] is not None
    task = outcome["tasks"][TASK]
    assert task["evaluation"]["gate"]["verdict"] == "pass"
    assert task["package"]["tag"] and Path(task["package"]["uri"]).is_file()
    assert task["promotion"].endswith("candidate -> staging")

    after = trained.registry_after
    [(pretrain_run_id, pretrain_status, _)] = after.runs["pretrain"]
    assert (pretrain_run_id, pretrain_status) == (trained.killed_run_id, "succeeded")
    assert [m[0] for m in after.models if m[1] == "foundation"] == ["ecg-fm@1"]
    [model] = [m for m in after.models if m[1] == "task"]
    assert model == (f"{TASK}@1", "task", "staging", "pass")
    assert after.dataset_versions == [current_version(Workspace(trained.settings))]
    assert after.bentos == 1
    stage_runs = [after.runs[kind] for kind in ("finetune", "evaluate", "package")]
    assert all(len(found) == 1 for found in stage_runs), after.runs
    assert {flow_run for found in stage_runs for _, _, flow_run in found} == {outcome["flow_run_id"]}

    other = waiter.result
    assert other is not None
    assert all(other["cached"].values()), other["cached"]
    assert other["foundation"]["model_ref"] == "ecg-fm@1"
    assert other["tasks"][TASK]["package"]["tag"] == task["package"]["tag"]

    artifacts = _artifacts(prefect_server, outcome["flow_run_id"])
    assert {"retrain-summary", "retrain-counts", "retrain-metrics"} <= set(artifacts)
    assert "`ecg-fm@1` — resume" in artifacts["retrain-summary"].data
    links = {
        key: unquote(urlparse(re.fullmatch(r"\[.*\]\((.+)\)", artifact.data)[1]).path)  # type: ignore[index]
        for key, artifact in artifacts.items()
        if artifact.type == "markdown" and key != "retrain-summary"
    }
    assert Path(links["retrain-validation-report"]).is_file()
    assert Path(links[f"retrain-evaluation-report-{TASK}"]) == Path(task["evaluation"]["report_html"])
    assert Path(links[f"retrain-bento-{TASK}"]) == Path(task["package"]["uri"])
    counts = json.loads(artifacts["retrain-counts"].data)
    assert counts[0]["ingested"] == 393


def test_blocking_validation_fails_the_run_and_versions_nothing(tmp_path: Path, prefect_server: str) -> None:
    """A drop whose records all fail to read leaves an empty store: the 'no records' block ends the run."""
    settings: Settings = new_workspace(tmp_path)
    write_params(settings, TINY)
    drop = tmp_path / "unreadable"
    drop.mkdir()
    (drop / "r1.hea").write_text("r1 1 100 1000\nr1.dat 16 200/mV 16 0 0 0 0 I\n")
    (drop / "r1.dat").write_bytes(b"\0" * 10)
    run = run_flow(flow_env(settings, prefect_server, tmp_path), tmp_path / "logs", drop)
    assert run.returncode == 1
    assert "failed blocking expectations" in run.stderr and "summary.html" in run.stderr
    assert current_version(Workspace(settings)) is None
    with open_registry(settings.resolved_registry_url) as registry:
        assert registry.dataset_versions() == []
        assert registry.models() == []
