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
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from components.config import Settings
from components.localserver import ServerStartError, start_on_free_port, stop

STARTUP_TIMEOUT_S = 180.0  # a fresh Prefect home migrates its database first; slow on 2 busy cores
STOP_GRACE_S = 20.0  # for the server to shut down on SIGTERM before it is killed


class PrefectServerError(ServerStartError):
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
    log = Path(os.environ["PREFECT_HOME"]) / "server.log" if "PREFECT_HOME" in os.environ else None
    out = log.open("ab") if log else subprocess.DEVNULL
    try:
        port, process = start_prefect_server(port, out)
        try:
            yield api_url(port)
        finally:
            stop(process, STOP_GRACE_S)
    finally:
        if log:
            out.close()  # type: ignore[union-attr]


def api_url(port: int) -> str:
    """The API URL of a Prefect server on 127.0.0.1:``port``."""
    return f"http://127.0.0.1:{port}/api"


def start_prefect_server(
    port: int | None, out: IO[bytes] | int, *, env: dict[str, str] | None = None, ui: bool = True
) -> tuple[int, subprocess.Popen[bytes]]:
    """``prefect server start`` on 127.0.0.1 (a free port unless given), healthy when it returns; its
    output goes to ``out``. In a process group of its own when ``env`` is given (tests stop the group)."""
    base = dict(os.environ if env is None else env)

    def start(chosen: int) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1"]
        command += ["--port", str(chosen), *([] if ui else ["--no-ui"])]
        return subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**base, "PREFECT_API_URL": api_url(chosen)},
            start_new_session=env is not None,
        )

    try:
        chosen, process = start_on_free_port(
            start,
            lambda p: f"{api_url(p)}/health",
            what="the Prefect server",
            timeout_s=STARTUP_TIMEOUT_S,
            port=port,
        )
    except ServerStartError as exc:
        raise PrefectServerError(str(exc)) from exc
    return chosen, process
