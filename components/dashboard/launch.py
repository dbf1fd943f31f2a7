"""``ecgops dashboard``: run the Streamlit app in ``dashboards/`` on the workspace's settings."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from components.config import Settings
from components.errors import UserError

DEFAULT_PORT = 8501
DEFAULT_ADDRESS = "127.0.0.1"


class DashboardError(UserError, RuntimeError):
    """The dashboard cannot be started (the app is not installed next to ``components``)."""


def app_path() -> Path:
    """The entry script of the Streamlit app (``dashboards/app.py``)."""
    spec = importlib.util.find_spec("dashboards")
    if spec is None or not spec.submodule_search_locations:
        raise DashboardError("the `dashboards` package is not installed (reinstall ecgops: pip install -e .)")
    path = Path(next(iter(spec.submodule_search_locations))) / "app.py"
    if not path.is_file():
        raise DashboardError(f"the dashboard app is missing: {path}")
    return path


def streamlit_command(port: int = DEFAULT_PORT, address: str = DEFAULT_ADDRESS) -> list[str]:
    """The ``streamlit run`` command line: headless, no file watcher, no usage statistics."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app_path()),
        "--server.port",
        str(port),
        "--server.address",
        address,
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "minimal",
    ]


def dashboard_environment(settings: Settings) -> dict[str, str]:
    """The environment of the app: this process's, with the workspace settings made explicit."""
    env = dict(os.environ)
    env["ECGOPS_WORKSPACE"] = str(settings.workspace.resolve())
    env["ECGOPS_REGISTRY_URL"] = settings.resolved_registry_url
    if settings.artifact_store:
        env["ECGOPS_ARTIFACT_STORE"] = settings.artifact_store
    return env


def run_dashboard(settings: Settings, port: int = DEFAULT_PORT, address: str = DEFAULT_ADDRESS) -> None:
    """Replace this process with the Streamlit server (Ctrl+C stops it)."""
    command = streamlit_command(port, address)
    os.execve(command[0], command, dashboard_environment(settings))
