"""Start ``bentoml serve`` for a Bento in the background and wait until it is ready (tests, benchmarks).

Stopping it stops the server's process group and every process it started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from components.localserver import start_on_free_port


@dataclass(frozen=True)
class RunningServer:
    """A served Bento: its URL, process and log file."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def server_workspace(log: Path) -> dict[str, str]:
    """The environment that gives a server started beside ``log`` its own workspace there (its prediction
    log and spool under ``<log folder>/.ecgops/``), for tests and benchmarks."""
    return {"ECGOPS_WORKSPACE": str(log.parent.resolve())}


@contextmanager
def running_server(
    tag: str,
    *,
    bentoml_home: Path | None = None,
    api_key: str | None = None,
    log: Path,
    port: int | None = None,
    ready_timeout_s: float = 180.0,
    extra_env: dict[str, str] | None = None,
) -> Iterator[RunningServer]:
    """``bentoml serve TAG`` on 127.0.0.1 (a free port unless given) until the block ends; raises with the
    log tail if it never becomes ready."""
    env = {k: v for k, v in os.environ.items() if k != "ECGOPS_API_KEY"}
    env |= {"BENTOML_DO_NOT_TRACK": "True", **(extra_env or {})}
    if bentoml_home is not None:
        env["BENTOML_HOME"] = str(bentoml_home)
    if api_key is not None:
        env["ECGOPS_API_KEY"] = api_key
    log.parent.mkdir(parents=True, exist_ok=True)

    def start(chosen: int) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "bentoml", "serve", tag, "--host", "127.0.0.1"]
        command += ["--port", str(chosen)]
        with log.open("wb") as sink:
            return subprocess.Popen(
                command, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
            )

    def log_tail(lines: int = 40) -> str:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])

    chosen, process = start_on_free_port(
        start,
        lambda p: f"http://127.0.0.1:{p}/readyz",
        what=f"bentoml serve {tag}",
        timeout_s=ready_timeout_s,
        port=port,
        details=log_tail,
        stop=_stop,
    )
    try:
        yield RunningServer(f"http://127.0.0.1:{chosen}", process, log)
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, then anything it started that outlived it (BentoML runs its
    workers in process groups of their own)."""
    import psutil

    if process.poll() is not None:
        return
    descendants = psutil.Process(process.pid).children(recursive=True)
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    _, alive = psutil.wait_procs(descendants, timeout=10)
    for child in alive:
        child.kill()
