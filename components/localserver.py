"""Servers this project starts on the loopback interface: a free port, a bounded wait until the server
answers its health check, and one retry on another port when something else took the port first.

Picking a free port and binding it later leaves a window in which another process can take it; the server
then exits at start-up. :func:`start_on_free_port` sees that (the process ended and the port answers
connections) and starts it again on another port. The Prefect server, ``bentoml serve`` and the dashboard
all start through it.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

Process = subprocess.Popen[Any]
P = TypeVar("P", bound=Process)
POLL_INTERVAL_S = 0.25
PORT_ATTEMPTS = 3


class ServerStartError(RuntimeError):
    """A local server exited during start-up or did not answer its health check in time."""


class ServerExitedError(ServerStartError):
    """The server process ended before it answered its health check."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _healthy(response: httpx.Response) -> bool:
    return response.status_code == 200


def kill(process: Process) -> None:
    """SIGKILL ``process`` and reap it."""
    process.kill()
    process.wait()


def stop(process: Process, grace_s: float) -> None:
    """SIGTERM ``process`` and wait up to ``grace_s`` for it to exit, then SIGKILL it; reaped either way."""
    process.terminate()
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        kill(process)


def wait_until_healthy(
    url: str,
    process: Process | None,
    *,
    what: str,
    timeout_s: float,
    healthy: Callable[[httpx.Response], bool] = _healthy,
    details: Callable[[], str] = lambda: "",
) -> None:
    """Poll ``url`` until ``healthy(response)``; :class:`ServerExitedError` as soon as ``process`` ends,
    :class:`ServerStartError` after ``timeout_s``. ``details()`` (e.g. a log tail) ends either message."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ServerExitedError(f"{what} exited with code {process.returncode}\n{details()}".rstrip())
        try:
            if healthy(httpx.get(url, timeout=2.0)):
                return
        except httpx.HTTPError:
            pass
        time.sleep(POLL_INTERVAL_S)
    raise ServerStartError(f"{what} at {url} did not answer within {timeout_s:.0f} s\n{details()}".rstrip())


def start_on_free_port(
    start: Callable[[int], P],
    health_url: Callable[[int], str],
    *,
    what: str,
    timeout_s: float,
    port: int | None = None,
    healthy: Callable[[httpx.Response], bool] = _healthy,
    details: Callable[[], str] = lambda: "",
    stop: Callable[[P], None] = lambda process: kill(process),
) -> tuple[int, P]:
    """Start a server with ``start(port)`` and wait until ``health_url(port)`` is healthy.

    With no ``port`` given, a free one is picked, and picked again (up to :data:`PORT_ATTEMPTS` times)
    when the server exited because another process took it meanwhile. A server that fails is ``stop``-ped
    before the error is raised. Returns the port and the process.
    """
    for attempt in range(1, PORT_ATTEMPTS + 1):
        chosen = port or free_port()
        process = start(chosen)
        try:
            wait_until_healthy(
                health_url(chosen), process, what=what, timeout_s=timeout_s, healthy=healthy, details=details
            )
            return chosen, process
        except ServerExitedError:
            stop(process)
            if port is not None or attempt == PORT_ATTEMPTS or not port_in_use(chosen):
                raise
        except BaseException:
            stop(process)
            raise
    raise AssertionError("unreachable")  # the loop returns or raises
