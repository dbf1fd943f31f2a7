"""Fixtures of the fault tests: the session's Prefect server (from tests/flows), a small drop (120 demo
records, one with a dead lead so validation quarantines it), ``ecgops`` commands forked from a
pre-imported parent (``zygote.py``), one uninterrupted reference run (on PostgreSQL, its sessions ended
during a write) whose registry the faulted runs must end up equal to, registry snapshots, bounded waits
and temporary PostgreSQL databases."""

from __future__ import annotations

import csv
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

import pytest

from components.config import Settings
from components.runs.lock import holder
from tests.conftest import SAMPLES, zero_lead_in_drop
from tests.flows.conftest import (
    TASK,
    TINY,
    Finished,
    flow_env,
    gate_policy,
    new_workspace,
    prefect_server,
    write_params,
)

__all__ = ["prefect_server"]  # the session's Prefect server, shared with tests/flows

REPO = Path(__file__).resolve().parents[2]
N_RECORDS = 120  # enough for patient-level splits with test records of every superclass
PG_URL = os.environ.get("ECGOPS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
WAIT_S = 120.0  # bounded waits: generous, so a loaded machine never fails a test by chance
T = TypeVar("T")


class Forked:
    """An ``ecgops`` process forked by a :class:`Zygote` (the part of ``subprocess.Popen`` tests use)."""

    def __init__(self, zygote: Zygote, pid: int) -> None:
        self.zygote, self.pid = zygote, pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        self.returncode = self.zygote.exit_code(self.pid, timeout_s=0)
        return self.returncode

    def wait(self, timeout: float = 600) -> int:
        code = self.zygote.exit_code(self.pid, timeout_s=timeout)
        if code is None:
            raise AssertionError(f"ecgops (pid {self.pid}) did not end within {timeout:.0f} s")
        self.returncode = code
        return code

    def kill(self) -> None:
        """SIGKILL its whole process group (its Dask or DDP workers too)."""
        with suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)


@dataclass
class Started:
    """A running ``ecgops`` command whose output goes to files."""

    process: Forked
    stdout: Path
    stderr: Path
    started: float = field(default_factory=time.monotonic)

    def finish(self, timeout: float = 600) -> Finished:
        self.process.wait(timeout)
        out = self.stdout.read_text()
        try:
            result = json.loads(out) if out.strip() else None
        except json.JSONDecodeError:
            result = None
        code = self.process.returncode
        assert code is not None
        return Finished(code, result, self.stderr.read_text(), time.monotonic() - self.started)


class Zygote:
    """``zygote.py`` running with one workspace's environment: forks ``ecgops`` commands on request."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        with log.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.faults.zygote"],
                cwd=REPO,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                start_new_session=True,
            )
        self.log = log
        self.started: queue.Queue[int] = queue.Queue()
        self.exits: dict[int, int] = {}
        self.changed = threading.Condition()
        self.lock = threading.Lock()  # one request at a time: its reply is the next "started"
        threading.Thread(target=self._read, daemon=True).start()
        if self.started.get(timeout=300) != 0:
            raise AssertionError(f"the zygote did not start: {log.read_text()[-3000:]}")

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            word, *values = raw.decode().split()
            if word == "ready":
                self.started.put(0)
            elif word == "started":
                self.started.put(int(values[0]))
            elif word == "exit":
                with self.changed:
                    self.exits[int(values[0])] = int(values[1])
                    self.changed.notify_all()
        self.started.put(-1)  # the zygote ended

    def start(self, argv: list[str], logs: Path, env: dict[str, str] | None = None) -> Started:
        """Fork ``ecgops ARGV`` with stdout/stderr in ``logs`` (and ``env`` added to its environment)."""
        logs.mkdir(parents=True, exist_ok=True)
        for name in ("stdout.json", "stderr.log"):  # there before the child writes to them
            (logs / name).touch()
        request = {
            "argv": argv,
            "stdout": str(logs / "stdout.json"),
            "stderr": str(logs / "stderr.log"),
            "env": env or {},
        }
        with self.lock:
            stdin: IO[bytes] | None = self.process.stdin
            assert stdin is not None
            stdin.write(json.dumps(request).encode() + b"\n")
            stdin.flush()
            pid = self.started.get(timeout=WAIT_S)
        if pid <= 0:
            raise AssertionError(f"the zygote ended: {self.log.read_text()[-3000:]}")
        return Started(Forked(self, pid), logs / "stdout.json", logs / "stderr.log")

    def run(self, drop: Path, logs: Path) -> Started:
        """``ecgops run --drop DROP --json``."""
        return self.start(["run", "--drop", str(drop), "--json"], logs)

    def exit_code(self, pid: int, timeout_s: float) -> int | None:
        with self.changed:
            self.changed.wait_for(lambda: pid in self.exits, timeout=timeout_s)
            return self.exits.get(pid)

    def close(self) -> None:
        """End input: the zygote kills what it still runs and exits."""
        try:
            if self.process.stdin is not None:
                self.process.stdin.close()
            self.process.wait(timeout=WAIT_S)
        finally:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def wait_for(
    check: Callable[[], T | None], what: str, run: Started | None = None, timeout_s: float = WAIT_S
) -> T:
    """Poll ``check`` until it returns something (not None/False); fail after ``timeout_s`` or when
    ``run`` ended first."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found:
            return found
        if run is not None and run.process.poll() is not None:
            raise AssertionError(f"the run ended before {what}: {run.stderr.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout_s:.0f} s")
        time.sleep(0.05)


def flow_run_id_of(settings: Settings, run: Started) -> str:
    """The Prefect flow-run id of the ``retrain`` run that holds the workspace (from the lock file)."""

    def current() -> str | None:
        record = holder(settings)
        if record and record.get("pid") == run.process.pid:
            return str(record.get("flow_run_id"))
        return None

    return wait_for(current, "the run taking the workspace lock", run, timeout_s=300)


def task_states(server: str, flow_run_id: str) -> dict[str, str]:
    """Stage task name → state name (Completed, Cached, Running, …) of a ``retrain`` flow run's stages.
    Prefect stands a task run for each subflow in its parent; those are left out, as a subflow named like
    its task (``pretrain``) would otherwise shadow the task's state."""
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, FlowRunFilterParentFlowRunId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: server}), get_client(sync_client=True) as client:
        parent = UUID(flow_run_id)
        subflows = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent]))
        )
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[parent, *(f.id for f in subflows)]))
        )
    wrappers = {f.parent_task_run_id for f in subflows}  # the task runs that stand for the stage subflows
    return {
        r.name.rsplit("-", 1)[0]: str(r.state.name)
        for r in runs
        if r.state is not None and r.id not in wrappers
    }


def stage_done(server: str, flow_run_id: str, stage: str) -> Callable[[], dict[str, str] | None]:
    """A check for :func:`wait_for`: the run's stage states once ``stage`` finished (ran or cached)."""

    def check() -> dict[str, str] | None:
        states = task_states(server, flow_run_id)
        return states if states.get(stage) in ("Completed", "Cached") else None

    return check


@pytest.fixture(scope="session")
def drop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first ``N_RECORDS`` demo records as a PTB-XL drop, the 4th with a dead lead."""
    root = tmp_path_factory.mktemp("faults-drop")
    with (SAMPLES / "ptbxl_database.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1 : N_RECORDS + 1]
    with (root / "ptbxl_database.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows([header, *body])
    shutil.copy(SAMPLES / "scp_statements.csv", root)
    column = header.index("filename_lr")
    for row in body:
        for suffix in (".hea", ".dat"):
            target = root / f"{row[column]}{suffix}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(SAMPLES / f"{row[column]}{suffix}", target)
    zero_lead_in_drop(root, body[3][column], "V2")
    return root


def params_for(root: Path) -> dict[str, Any]:
    """The tiny test parameters, one pretraining epoch, and a lenient gate (every run packages and
    promotes)."""
    params: dict[str, Any] = json.loads(json.dumps(TINY))
    params["pretrain"]["max_epochs"] = 1
    params["evaluate"]["gate_policies"] = {TASK: str(gate_policy(root, "faults-lenient", 0.0))}
    return params


@dataclass
class Workspace:
    """A git workspace with the tiny parameters and the environment of ``ecgops`` commands run in it."""

    root: Path
    settings: Settings
    env: dict[str, str]


def make_workspace(root: Path, server: str, registry_url: str | None = None) -> Workspace:
    settings = new_workspace(root)
    if registry_url is not None:
        settings = settings.model_copy(update={"registry_url": registry_url})
    write_params(settings, params_for(root))
    return Workspace(root, settings, flow_env(settings, server, root))


@contextmanager
def zygote_for(ws: Workspace) -> Iterator[Zygote]:
    """A :class:`Zygote` with the workspace's environment, closed afterwards."""
    zygote = Zygote(ws.env, ws.root / "zygote.log")
    try:
        yield zygote
    finally:
        zygote.close()


def registry_shape(url: str) -> dict[str, Any]:
    """What a registry holds, comparable across workspaces and databases (no ids, md5s or times):
    dataset versions, validation runs, models with stage and gate, gate decisions, metrics, Bentos, the
    runs that succeeded and the audit actions. Duplicates show up as repeated entries or counts."""
    from components.registry import open_registry

    with open_registry(url) as registry:
        versions = sorted(registry.dataset_versions(), key=lambda v: v.id)
        index = {v.dvc_md5: i for i, v in enumerate(versions)}
        models = sorted(registry.models(), key=lambda m: m.id)
        return {
            "dataset_versions": [
                (v.dataset, v.n_records, v.n_quarantined, v.n_patients, index.get(v.parent_md5 or ""))
                for v in versions
            ],
            "validation_runs": sorted(
                (index[r.dataset_version_md5], r.verdict) for r in registry.validation_runs()
            ),
            "models": [
                (
                    m.ref,
                    m.kind,
                    m.task,
                    m.parent,
                    m.stage,
                    m.gate_verdict,
                    index.get(m.dataset_version_md5 or ""),
                )
                for m in models
            ],
            "gate_decisions": {m.ref: [g.verdict for g in registry.gate_decisions(m.ref)] for m in models},
            "metrics": {
                m.ref: sorted((x.split, x.cohort, x.name) for x in registry.metrics(m.ref)) for m in models
            },
            "bentos": sorted((b.model, b.task) for b in registry.bentos()),
            "succeeded_runs": dict(
                Counter(r.kind for r in registry.runs(limit=10_000) if r.status == "succeeded")
            ),
            "audit": dict(Counter(a.action for a in registry.audit(limit=None))),
        }


def unfinished_runs(url: str) -> list[tuple[str, str]]:
    """Registry runs still marked running: (kind, status)."""
    from components.registry import open_registry

    with open_registry(url) as registry:
        return [(r.kind, r.status) for r in registry.runs(limit=10_000) if r.status == "running"]


# ---------------------------------------------------------------------------------------------- PostgreSQL


def admin_connection(url: str) -> Any:
    """A psycopg connection (autocommit) to the database of ``url``."""
    import psycopg
    from sqlalchemy.engine import make_url

    return psycopg.connect(
        make_url(url).set(drivername="postgresql").render_as_string(hide_password=False),
        autocommit=True,
        connect_timeout=10,
    )


def terminate_sessions(admin: Any) -> int:
    """End every other session of the database, as a server restart would; returns how many."""
    rows = admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    ).fetchall()
    return len(rows)


@contextmanager
def writes_held(url: str, table: str) -> Iterator[None]:
    """Hold a SHARE lock on ``table`` (reads go on, inserts wait) until the block ends, from a session of
    its own (a session inside a transaction sees a frozen ``pg_stat_activity``, so others poll)."""
    locker = admin_connection(url)
    try:
        locker.execute("BEGIN")
        locker.execute(f"LOCK TABLE {table} IN SHARE MODE")
        yield
    finally:
        locker.close()  # ends the transaction, and the lock with it


def waiting_writer(admin: Any, table: str) -> int | None:
    """The pid of a session of this database waiting for a lock on ``table``, if any."""
    row = admin.execute(
        "SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE NOT l.granted AND l.relation = %s::regclass AND a.datname = current_database()",
        (table,),
    ).fetchone()
    return int(row[0]) if row else None


@contextmanager
def temporary_database() -> Iterator[str | None]:
    """A fresh PostgreSQL database on the test server (None when there is none), dropped afterwards with
    its sessions ended first."""
    try:
        import psycopg
    except ImportError:
        yield None
        return
    from sqlalchemy.engine import make_url

    base = make_url(PG_URL)
    name = f"ecgops_fault_{uuid.uuid4().hex[:12]}"
    try:
        conn = admin_connection(PG_URL)
    except psycopg.OperationalError:
        yield None
        return
    try:
        conn.execute(f'CREATE DATABASE "{name}"')
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()
        from components.registry.db import forget_schema_checks

        forget_schema_checks()


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one test (skipped without a server)."""
    with temporary_database() as url:
        if url is None:
            pytest.skip(f"no PostgreSQL at {PG_URL} (or no psycopg)")
        yield url


# ---------------------------------------------------------------------------------------------- reference


@dataclass
class Reference:
    """An uninterrupted ``ecgops run`` on a fresh workspace, started in the background so that it overlaps
    the kill chain. On PostgreSQL every session of its registry is ended while it is inside a write (the
    dataset version's insert, held on a table lock until then)."""

    workspace: Workspace
    on_postgres: bool
    run: Finished | None = None
    shape: dict[str, Any] = field(default_factory=dict)
    sessions_ended: int = 0
    error: BaseException | None = None
    thread: threading.Thread | None = None

    def _drive(self, zygote: Zygote, drop: Path) -> None:
        url = self.workspace.settings.resolved_registry_url
        logs = self.workspace.root / "logs"
        try:
            if not self.on_postgres:
                self.run = zygote.run(drop, logs).finish()
            else:
                self.run = self._with_sessions_ended(zygote, drop, url, logs)
            if self.run.returncode == 0:
                self.shape = registry_shape(url)
        except BaseException as exc:  # re-raised by finished()
            self.error = exc

    def _with_sessions_ended(self, zygote: Zygote, drop: Path, url: str, logs: Path) -> Finished:
        from components.registry import open_registry

        open_registry(url).close()  # migrated, so its tables can be locked before the run starts
        admin = admin_connection(url)
        try:
            with writes_held(url, "dataset_versions"):
                run = zygote.run(drop, logs)
                try:
                    wait_for(lambda: waiting_writer(admin, "dataset_versions"), "the version write", run, 600)
                    self.sessions_ended = terminate_sessions(admin)
                except BaseException:
                    run.process.kill()
                    raise
        finally:
            admin.close()
        return run.finish()

    def finished(self) -> Reference:
        """Wait for the run; it must have succeeded."""
        assert self.thread is not None
        self.thread.join(timeout=900)
        if self.error is not None:
            raise self.error
        assert self.run is not None, "the reference run did not end within 900 s"
        assert self.run.returncode == 0, self.run.stderr[-4000:]
        return self


@pytest.fixture(scope="session")
def reference(
    tmp_path_factory: pytest.TempPathFactory, prefect_server: str, drop: Path
) -> Iterator[Reference]:
    with temporary_database() as url:
        ws = make_workspace(tmp_path_factory.mktemp("faults-reference"), prefect_server, registry_url=url)
        with zygote_for(ws) as zygote:
            ref = Reference(ws, on_postgres=url is not None)
            ref.thread = threading.Thread(target=ref._drive, args=(zygote, drop), daemon=True)
            ref.thread.start()
            try:
                yield ref
            finally:
                ref.thread.join(timeout=900)  # before the zygote and the database go
