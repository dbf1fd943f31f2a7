"""The Prefect API a run talks to.

``PREFECT_API_URL`` when it is set (a team's Prefect server, Prefect Cloud). Otherwise a local server for
the duration of the command: Prefect's temporary server for ``ecgops run`` (no background services), or a
full ``prefect server start`` (scheduler, UI) for ``ecgops schedule``, whose cron needs the scheduler.
The URL is exported to the environment so the processes a run starts (Dask workers, the runs a served
deployment launches) report to the same server. Prefect's state lives in ``PREFECT_HOME`` (by default
``<state_dir>/prefect``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from components.config import Settings

STARTUP_TIMEOUT_S = 180.0  # a fresh Prefect home migrates its database first; slow on 2 busy cores


class PrefectServerError(RuntimeError):
    """The local Prefect server did not come up."""


def prepare_prefect_home(settings: Settings) -> Path:
    """Keep Prefect's state inside the workspace unless ``PREFECT_HOME`` says otherwise."""
    home = Path(os.environ.setdefault("PREFECT_HOME", str(settings.state_dir / "prefect")))
    home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", str(int(STARTUP_TIMEOUT_S)))
    return home


@contextmanager
def prefect_api(*, full_server: bool = False, port: int | None = None) -> Iterator[str]:
    """Yield the API URL this process (and its children) use; start a local server when none is set."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    configured = PREFECT_API_URL.value()
    if configured:
        os.environ["PREFECT_API_URL"] = configured
        yield configured
        return
    with _full_server(port) if full_server else _temporary_server() as url:
        os.environ["PREFECT_API_URL"] = url
        try:
            with temporary_settings(updates={PREFECT_API_URL: url}):
                try:
                    yield url
                finally:
                    _drain()
        finally:
            os.environ.pop("PREFECT_API_URL", None)


def _drain(timeout_s: float = 10.0) -> None:
    """Send the logs and events still queued before the server goes away (else they retry at exit)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=timeout_s)
    EventsWorker.drain_all(timeout=timeout_s)


@contextmanager
def _temporary_server() -> Iterator[str]:
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    server.start()
    try:
        yield server.api_url
    finally:
        server.stop()


@contextmanager
def _full_server(port: int | None) -> Iterator[str]:
    port = port or free_port()
    url = f"http://127.0.0.1:{port}/api"
    log = Path(os.environ["PREFECT_HOME"]) / "server.log" if "PREFECT_HOME" in os.environ else None
    out = log.open("ab") if log else subprocess.DEVNULL
    process = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        stdout=out,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PREFECT_API_URL": url},
    )
    try:
        wait_healthy(url, process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if log:
            out.close()  # type: ignore[union-attr]


def wait_healthy(
    url: str, process: subprocess.Popen[bytes] | None = None, timeout_s: float = STARTUP_TIMEOUT_S
) -> None:
    """Wait until the Prefect API at ``url`` answers its health check."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise PrefectServerError(f"the Prefect server exited with code {process.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise PrefectServerError(f"the Prefect server at {url} did not answer within {timeout_s:.0f} s")


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
