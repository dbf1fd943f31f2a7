"""``ecgops dashboard``: the Streamlit app for data stewards and deployment teams (register with
``app.command("dashboard")(dashboard_command)``)."""

from __future__ import annotations

import typer
from rich.console import Console

from components.dashboard.launch import DEFAULT_ADDRESS, DEFAULT_PORT

console = Console(stderr=True)


def dashboard_command(
    port: int = typer.Option(DEFAULT_PORT, "--port", min=1, max=65535, help="Port to serve the app on."),
    address: str = typer.Option(
        DEFAULT_ADDRESS, "--address", help="Interface to bind (0.0.0.0 to let others on the network in)."
    ),
) -> None:
    """Serve the dashboards (data quality, datasets, models, deployments) for this workspace."""
    from components.config import get_settings
    from components.dashboard.launch import run_dashboard

    settings = get_settings()
    console.print(
        f"dashboard of {settings.workspace.resolve()} on http://{address}:{port} "
        f"(registry {settings.resolved_registry_url}); Ctrl+C stops it"
    )
    run_dashboard(settings, port=port, address=address)
