"""Unattended runs: `ecgops schedule` serves a cron deployment of retrain on a real Prefect server and a
triggered run completes; prefect.yaml deploys the same flow to a work pool."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.registry import open_registry
from tests.conftest import REPO_ROOT, SAMPLES
from tests.flows.conftest import TASK, TrainedWorkspace, gate_policy, write_params

pytestmark = pytest.mark.slow

# its own deployment name: the prefect.yaml test deploys ecgops-retrain on the same server
SERVED = "ecgops-retrain-served-test"


def _api(server: str, call: Any) -> Any:
    """Run ``await call(client)`` against the Prefect API at ``server``."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    async def go() -> Any:
        async with get_client() as client:
            return await call(client)

    with temporary_settings(updates={PREFECT_API_URL: server}):
        return asyncio.run(go())


def _wait_for_deployment(server: str, name: str, process: subprocess.Popen[bytes], log: Path) -> Any:
    from prefect.exceptions import ObjectNotFound

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            return _api(server, lambda c: c.read_deployment_by_name(name))
        except ObjectNotFound:
            time.sleep(0.5)
    raise AssertionError(f"deployment {name} did not appear: {log.read_text()[-3000:]}")


def _run_and_wait(server: str, deployment_id: Any, timeout_s: float = 300) -> Any:
    """Create a flow run of the deployment (as the schedule would) and wait for its final state."""
    run = _api(server, lambda c: c.create_flow_run_from_deployment(deployment_id))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        current = _api(server, lambda c: c.read_flow_run(run.id))
        if current.state is not None and current.state.is_final():
            return current
        time.sleep(1)
    raise AssertionError(f"flow run {run.id} did not finish within {timeout_s} s")


def _stop(served: subprocess.Popen[bytes], log: Path) -> None:
    """Stop ``ecgops schedule`` as a person would: Ctrl-C, and Ctrl-C again if it is still winding down
    after a minute (on a loaded machine Prefect's runner has been seen to hang in its cleanup after it
    paused the deployment); kill it, and fail, if even that does not stop it."""
    for _ in range(2):
        served.send_signal(signal.SIGINT)
        try:
            served.wait(timeout=60)
            return
        except subprocess.TimeoutExpired:
            continue
    served.kill()
    served.wait()
    raise AssertionError(f"ecgops schedule did not stop on Ctrl-C: {log.read_text()[-3000:]}")


def _cron_far_from_now() -> str:
    """02:00 on the 1st of the month six months from now: it cannot fire while the test runs, so the only
    run is the one the test triggers (a real schedule firing during the test would add a second)."""
    month = (datetime.now(UTC).month + 5) % 12 + 1
    return f"0 2 1 {month} *"


def test_served_schedule_runs_retrain_and_a_failing_gate_keeps_production(
    trained: TrainedWorkspace, prefect_server: str, tmp_path: Path
) -> None:
    """The triggered run fine-tunes a new candidate (another seed) that fails a strict gate: the run
    completes, the candidate keeps its verdict, nothing is packaged or promoted, production stays."""
    with open_registry(trained.settings.resolved_registry_url) as registry:
        registry.promote(f"{TASK}@1", "production", reason="test: the production model")
        bentos = len(registry.bentos())
    params = json.loads(json.dumps(trained.params))
    params["finetune"]["seed"] = 1
    params["evaluate"]["gate_policies"] = {TASK: str(gate_policy(tmp_path, "flows-test-strict", 0.999))}
    write_params(trained.settings, params)
    cron = _cron_far_from_now()
    log = tmp_path / "schedule.log"
    with log.open("wb") as out:
        served = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "components.cli",
                "schedule",
                "--cron",
                cron,
                "--drop",
                str(SAMPLES),
                "--name",
                SERVED,
            ],
            env=trained.env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deployment = _wait_for_deployment(prefect_server, f"retrain/{SERVED}", served, log)
        [schedule] = deployment.schedules
        assert (schedule.schedule.cron, schedule.active) == (cron, True)
        assert deployment.parameters["drop"] == str(SAMPLES)
        finished = _run_and_wait(prefect_server, deployment.id)
        assert finished.state.is_completed(), log.read_text()[-4000:]
    finally:
        write_params(trained.settings, trained.params)
        _stop(served, log)
    assert served.returncode == 0, log.read_text()[-3000:]
    after = _api(prefect_server, lambda c: c.read_deployment(deployment.id))
    assert after.paused, "stopping `ecgops schedule` pauses the deployment"
    with open_registry(trained.settings.resolved_registry_url) as registry:
        assert registry.model_at_stage(TASK, "production").ref == f"{TASK}@1"  # type: ignore[union-attr]
        candidate = registry.model(f"{TASK}@2")
        assert (candidate.stage, candidate.gate_verdict) == ("candidate", "fail")
        [run] = registry.runs(kind="finetune", limit=1)
        assert run.prefect_flow_run_id == str(finished.id)
        assert len(registry.bentos()) == bentos
        assert [m.ref for m in registry.models(kind="foundation")] == ["ecg-fm@1"]


def test_prefect_yaml_deploys_retrain_to_a_work_pool(
    trained: TrainedWorkspace, prefect_server: str, tmp_path: Path
) -> None:
    config = yaml.safe_load((REPO_ROOT / "prefect.yaml").read_text())
    [spec] = config["deployments"]
    pool = spec["work_pool"]["name"]
    env = {**trained.env, "ECGOPS_DROP": str(SAMPLES)}
    prefect = [sys.executable, "-m", "prefect", "--no-prompt"]
    subprocess.run([*prefect, "work-pool", "create", pool, "--type", "process"], env=env, check=True)
    project = tmp_path / "project"  # the entrypoint is a module path: any directory deploys it
    project.mkdir()
    shutil.copy(REPO_ROOT / "prefect.yaml", project)
    deployed = subprocess.run(
        [*prefect, "deploy", "--all"], env=env, cwd=project, capture_output=True, text=True
    )
    assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]
    deployment = _api(prefect_server, lambda c: c.read_deployment_by_name(f"retrain/{spec['name']}"))
    assert deployment.work_pool_name == pool and deployment.entrypoint == "flows.retrain.retrain"
    assert deployment.parameters == {"drop": str(SAMPLES)}
    assert deployment.job_variables["env"]["ECGOPS_WORKSPACE"] == trained.env["ECGOPS_WORKSPACE"]
    assert [s.schedule.cron for s in deployment.schedules] == ["0 2 * * 0"]
