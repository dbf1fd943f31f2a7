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
from components.runs.lock import workspace_lock
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


def _stop(served: subprocess.Popen[bytes], log: Path, signal_number: int = signal.SIGINT) -> None:
    """Stop ``ecgops schedule`` as a person (Ctrl-C) or a service manager (SIGTERM) would. It pauses the
    deployment and stops Prefect's runner within two grace periods of 60 s; if it is still there after
    three minutes, dump its threads' stacks into the log (SIGUSR1), kill it and fail with the log tail."""
    served.send_signal(signal_number)
    try:
        served.wait(timeout=180)
        return
    except subprocess.TimeoutExpired:
        served.send_signal(signal.SIGUSR1)
        time.sleep(2)  # faulthandler writes the stacks from its signal handler, at once
        served.kill()
        served.wait()
    raise AssertionError(f"ecgops schedule did not stop: {log.read_text()[-6000:]}")


def _start_schedule(
    env: dict[str, str], cwd: Path, cron: str, log: Path, name: str = SERVED
) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
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
                name,
            ],
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


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
    served = _start_schedule(trained.env, tmp_path, cron, log)
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
    assert "the deployment is paused\n" in log.read_text()
    still = _api(prefect_server, lambda c: c.read_flow_run(finished.id))
    assert still.state.is_completed(), f"stopping relabelled the finished run: {still.state}"
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
    spec, monitor = config["deployments"]
    pool = spec["work_pool"]["name"]
    drops = tmp_path / "drops"
    env = {
        **trained.env,
        "ECGOPS_DROP": str(SAMPLES),
        "ECGOPS_MONITOR_TASK": "ptbxl-superdiagnostic",
        "ECGOPS_DROPS": str(drops),
    }
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
    watch = _api(prefect_server, lambda c: c.read_deployment_by_name(f"monitor/{monitor['name']}"))
    assert watch.work_pool_name == pool and watch.entrypoint == "flows.production.monitor_flow"
    expected = {"task_name": "ptbxl-superdiagnostic", "policy": "default", "drops": str(drops)}
    assert watch.parameters == expected
    assert [s.schedule.cron for s in watch.schedules] == ["0 6 * * *"]


def _wait_for_line(log: Path, line: str, served: subprocess.Popen[bytes], timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while line not in log.read_text():
        assert served.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.5)


@pytest.mark.parametrize(("cancel", "final"), [(False, "FAILED"), (True, "CANCELLED")])
def test_a_stop_lets_the_run_in_flight_finish_and_a_second_stop_cancels_it(
    trained: TrainedWorkspace, prefect_server: str, tmp_path: Path, cancel: bool, final: str
) -> None:
    """The run in flight waits for the workspace, which the test holds. A stop (a service manager's
    SIGTERM) pauses the deployment and lets the run end on its own: it gives up on the busy workspace
    after its 5 s lock timeout. A second stop (Ctrl-C) cancels it instead. Either way the process exits 0."""
    params = json.loads(json.dumps(trained.params))
    params["orchestration"]["lock_timeout_s"] = 600 if cancel else 5
    write_params(trained.settings, params)
    log = tmp_path / "schedule.log"
    name = f"{SERVED}-{final.lower()}"
    served = _start_schedule(trained.env, tmp_path, _cron_far_from_now(), log, name)
    try:
        with workspace_lock(trained.settings, timeout_s=0, owner={"test": "holds the workspace"}):
            deployment = _wait_for_deployment(prefect_server, f"retrain/{name}", served, log)
            run = _api(prefect_server, lambda c: c.create_flow_run_from_deployment(deployment.id))
            _wait_for_line(log, "waiting for the workspace", served)
            served.send_signal(signal.SIGTERM)
            _wait_for_line(log, f"waiting for run {run.name} to finish", served)
            if cancel:
                served.send_signal(signal.SIGINT)
            served.wait(timeout=180)
    finally:
        write_params(trained.settings, trained.params)
        if served.poll() is None:
            _stop(served, log)
    assert served.returncode == 0, log.read_text()[-3000:]
    ended = _api(prefect_server, lambda c: c.read_flow_run(run.id))
    assert ended.state.type.value == final, log.read_text()[-3000:]
    assert _api(prefect_server, lambda c: c.read_deployment(deployment.id)).paused
    assert "\nstopped\n" in log.read_text(), log.read_text()[-3000:]
