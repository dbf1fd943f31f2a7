"""Parallel writers lose nothing and break no constraint; a killed writer leaves no half-written lineage."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from components.registry import open_registry
from components.registry.models import Bento, GateDecision, Metric, Model, StageAssignment

from .helpers import SHA

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("registry_worker.py")
N_WRITERS = 8
N_MODELS = 4


def _spawn(*args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, str(WORKER), *args], cwd=REPO, env=env, stderr=subprocess.PIPE)


@pytest.mark.slow
def test_parallel_writers_lose_nothing(db_url: str) -> None:
    workers = [_spawn("race", db_url, str(i), str(N_MODELS)) for i in range(N_WRITERS)]
    for proc in workers:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()[-2000:]
    total = N_WRITERS * N_MODELS
    with open_registry(db_url) as reg:
        assert len(reg.dataset_versions("race")) == 1
        models = reg.models(name="shared")
        assert sorted(m.version for m in models) == list(range(1, total + 1))
        assert len([m for m in models if m.stage == "production"]) == 1
        assert len(reg.bentos()) == total
        with Session(reg.engine) as s:
            assert s.scalar(select(func.count()).select_from(Metric)) == total
            assert s.scalar(select(func.count()).select_from(GateDecision)) == total
            assert s.scalar(select(func.count()).select_from(Model)) == total
            assert s.scalar(select(func.count()).where(StageAssignment.stage == "production")) == 1
        audit = reg.audit(limit=None)
        counts = {a: sum(1 for e in audit if e.action == a) for a in {e.action for e in audit}}
        assert counts["model.registered"] == counts["bento.registered"] == counts["gate.decided"] == total
        assert counts["dataset_version.recorded"] == 1
        # each model: (new) -> candidate, candidate -> production, and all but the last are archived later
        assert counts["stage.changed"] == 3 * total - 1
        assert {e.actor for e in audit} >= {f"worker-{i}" for i in range(N_WRITERS)}


@pytest.mark.slow
def test_a_killed_writer_leaves_no_half_written_lineage(db_url: str, tmp_path: Path) -> None:
    open_registry(db_url).close()
    marker = tmp_path / "marker"
    proc = _spawn("hang", db_url, str(marker))
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "the writer never reached its transaction"
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    with open_registry(db_url) as reg:
        assert reg.models() == [] and reg.audit() == [] and reg.bentos() == []
        model = reg.register_model("after", kind="task", task="crash", artifact_uri="x", sha256=SHA)
        assert reg.model("after").id == model.id
        with Session(reg.engine) as s:
            assert s.scalar(select(func.count()).select_from(Metric)) == 0
            assert s.scalar(select(func.count()).select_from(Bento)) == 0
