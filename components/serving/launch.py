"""Start ``bentoml serve`` for a Bento in the background and wait until it is ready (tests, benchmarks).

Stopping it stops the server's process group and every process it started.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx


@dataclass(frozen=True)
class RunningServer:
    """A served Bento: its URL, process and log file."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
    """``bentoml serve TAG`` on 127.0.0.1 until the block ends; raises with the log tail if it never
    becomes ready."""
    port = port or free_port()
    env = {k: v for k, v in os.environ.items() if k != "ECGOPS_API_KEY"}
    env |= {"BENTOML_DO_NOT_TRACK": "True", **(extra_env or {})}
    if bentoml_home is not None:
        env["BENTOML_HOME"] = str(bentoml_home)
    if api_key is not None:
        env["ECGOPS_API_KEY"] = api_key
    command = [sys.executable, "-m", "bentoml", "serve", tag, "--port", str(port), "--host", "127.0.0.1"]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = RunningServer(f"http://127.0.0.1:{port}", process, log)
    try:
        _wait_ready(server, ready_timeout_s)
        yield server
    finally:
        _stop(process)


def _wait_ready(server: RunningServer, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"bentoml serve exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"bentoml serve was not ready after {timeout_s:.0f} s:\n{server.log_tail()}")


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
