"""Fixtures for the orchestration tests: one real Prefect server for the session, tiny parameters, git
workspaces, and one workspace that the retraining flow has been through (killed once, then two runs at
once), which later tests reuse."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.config import Settings
from components.orchestration.server import api_url, start_prefect_server
from tests.conftest import SAMPLES, cli_env

TASK = "ptbxl-superdiagnostic"

#: tiny models: a pretraining epoch takes well under a second, so the pipeline runs in seconds
TINY: dict[str, Any] = {
    "ingest": {"dataset": "demo", "workers": 1},
    "pretrain": {
        "seed": 0,
        "batch_size": 16,
        "max_epochs": 6,
        "limit_train_records": 128,
        "embed_dim": 32,
        "warmup_steps": 2,
        "ecg": {"arch": "resnet", "width": 16, "depth": 2},
        "text": {"width": 32, "depth": 1, "heads": 2, "vocab_size": 300, "max_tokens": 32},
    },
    "finetune": {"tasks": [TASK], "max_epochs": 1, "batch_size": 16},
    "evaluate": {"bootstrap_rounds": 200, "subgroups": ["sex"]},
    "package": {},
    "orchestration": {"lock_timeout_s": 600, "retry_backoff_s": 0.5},
    "compute": {"task_runner": "thread", "accelerator": "cpu"},
}


def gate_policy(directory: Path, name: str, macro_auroc_floor: float) -> Path:
    """A real gate policy for the task whose only bar is a point-estimate macro AUROC floor."""
    policy = {
        "name": name,
        "version": 1,
        "tasks": [TASK],
        "description": f"test gate: macro AUROC >= {macro_auroc_floor}",
        "min_test_records": 1,
        "floors": {"bound": "point", "macro_auroc": macro_auroc_floor, "undefined_class": "skip"},
        "data": {"require_validation": True, "allowed_verdicts": ["pass", "warn"]},
    }
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(policy))
    return path


def write_params(settings: Settings, params: dict[str, Any]) -> None:
    (settings.workspace / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def new_workspace(root: Path) -> Settings:
    """A fresh git workspace with its own registry and DVC remote (like ``tests.conftest.workspace``)."""
    ws = root / "workspace"
    ws.mkdir(parents=True)
    for args in (["init", "-q"], ["config", "user.email", "t@ecgops.invalid"], ["config", "user.name", "t"]):
        subprocess.run(["git", "-C", str(ws), *args], check=True)
    (ws / ".gitignore").write_text(".ecgops/\n")
    return Settings(
        workspace=ws,
        registry_url=f"sqlite:///{root / 'registry.db'}",
        dvc_remote_url=str(root / "dvc-remote"),
        patient_salt="test-salt",  # type: ignore[arg-type]
    )


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prefect server (``prefect server start``, scheduler included) for the whole session."""
    home = tmp_path_factory.mktemp("prefect-server")
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    with (home / "server.log").open("wb") as log:
        port, server = start_prefect_server(None, log, env=env, ui=False)
        try:
            yield api_url(port)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)


def flow_env(settings: Settings, server: str, home: Path, **extra: str) -> dict[str, str]:
    """Environment of ``ecgops`` commands in tests: the workspace, the session's Prefect server, and
    private Prefect/BentoML homes."""
    env = cli_env(settings, PREFECT_HOME=str(home / "prefect"), BENTOML_HOME=str(home / "bentoml"), **extra)
    env["PREFECT_API_URL"] = server
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@dataclass
class Finished:
    """A finished ``ecgops run --json``: exit code, parsed result (None when it printed none), stderr."""

    returncode: int
    result: dict[str, Any] | None
    stderr: str
    seconds: float


@dataclass
class Started:
    """A running ``ecgops run --json`` whose output goes to files (a full pipe would block it)."""

    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path
    started: float

    def finish(self, timeout: float = 600) -> Finished:
        self.process.wait(timeout=timeout)
        out = self.stdout.read_text()
        return Finished(
            self.process.returncode,
            json.loads(out) if out.strip() else None,
            self.stderr.read_text(),
            time.monotonic() - self.started,
        )


def start_run(env: dict[str, str], logs: Path, drop: Path = SAMPLES) -> Started:
    """Start ``ecgops run --drop DROP --json`` in its own process group."""
    logs.mkdir(parents=True, exist_ok=True)
    stdout, stderr = logs / "stdout.json", logs / "stderr.log"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "components.cli", "run", "--drop", str(drop), "--json"],
            env=env,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    return Started(process, stdout, stderr, time.monotonic())


def run_flow(env: dict[str, str], logs: Path, drop: Path = SAMPLES, timeout: float = 600) -> Finished:
    return start_run(env, logs, drop).finish(timeout)


@dataclass(frozen=True)
class RegistryAfterRuns:
    """What the registry held once runs B and C finished, read before any test works on the workspace
    (the schedule test promotes and fine-tunes on it, in whatever order tests run)."""

    runs: dict[str, list[tuple[int, str, str | None]]]  # kind → (id, status, Prefect flow run id)
    models: list[tuple[str, str, str, str | None]]  # (ref, kind, stage, gate verdict)
    dataset_versions: list[str]
    bentos: int

    @classmethod
    def read(cls, url: str) -> RegistryAfterRuns:
        from components.registry import open_registry

        with open_registry(url) as registry:
            runs = {
                kind: [(r.id, r.status, r.prefect_flow_run_id) for r in registry.runs(kind=kind)]
                for kind in ("pretrain", "finetune", "evaluate", "package")
            }
            models = [(m.ref, m.kind, m.stage, m.gate_verdict) for m in registry.models()]
            versions = [v.dvc_md5 for v in registry.dataset_versions()]
            return cls(runs, models, versions, len(registry.bentos()))


@dataclass
class TrainedWorkspace:
    """A workspace after: run A killed during pretraining, then runs B and C started at once."""

    settings: Settings
    env: dict[str, str]
    params: dict[str, Any]
    killed_run_id: int
    runs: list[Finished]
    registry_after: RegistryAfterRuns


def _wait_for(path: Path, run: Started, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.is_file():
        if run.process.poll() is not None:
            raise AssertionError(f"the run ended before {path} appeared: {run.stderr.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not appear within {timeout_s} s")
        time.sleep(0.02)


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, prefect_server: str) -> TrainedWorkspace:
    """Run A is killed (SIGKILL, whole process group) right after pretraining's first checkpoint; then
    B and C start at once: one resumes and finishes the pipeline, the other waits for the workspace and
    then reuses everything."""
    from components.registry import open_registry

    root = tmp_path_factory.mktemp("trained")
    settings = new_workspace(root)
    params = json.loads(json.dumps(TINY))
    params["evaluate"]["gate_policies"] = {TASK: str(gate_policy(root, "flows-test-lenient", 0.0))}
    write_params(settings, params)
    env = flow_env(settings, prefect_server, root)

    killed = start_run(env, root / "logs-killed")
    _wait_for(settings.state_dir / "pretrain" / "demo" / "checkpoints" / "last.ckpt", killed)
    os.killpg(killed.process.pid, signal.SIGKILL)
    killed.process.wait()
    with open_registry(settings.resolved_registry_url) as registry:
        [pretrain_run] = registry.runs(kind="pretrain")
        assert pretrain_run.status == "running", "the run was killed after pretraining finished"
        assert registry.models() == []

    both = [start_run(env, root / f"logs-{name}") for name in ("b", "c")]
    finished = [run.finish() for run in both]
    after = RegistryAfterRuns.read(settings.resolved_registry_url)
    return TrainedWorkspace(settings, env, params, pretrain_run.id, finished, after)
