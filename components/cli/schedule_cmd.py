"""``ecgops schedule``: serve a Prefect deployment of ``retrain`` that runs on a cron schedule.

Register with ``app.command("schedule")(schedule_command)``. ``prefect.yaml`` describes the same
deployment for a Prefect work pool (``prefect deploy``) when runs should happen on other machines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console

from components.config import get_settings

console = Console(stderr=True, soft_wrap=True)

DEPLOYMENT = "ecgops-retrain"
DEFAULT_PORT = 4200  # Prefect's usual port: the UI of the local server is at http://127.0.0.1:4200


def schedule_command(
    cron: Annotated[str, typer.Option(help='When to run, as cron: "0 2 * * 0" is Sundays at 02:00.')],
    drop: Annotated[
        Path, typer.Option(help="The drop folder each run reads (new files in it are ingested).")
    ],
    dataset: Annotated[str | None, typer.Option(help="Dataset name (default: params.yaml).")] = None,
    timezone: Annotated[str, typer.Option(help="IANA time zone of the cron expression.")] = "UTC",
    name: Annotated[str, typer.Option(help="Deployment name.")] = DEPLOYMENT,
    port: Annotated[
        int, typer.Option(help="Port of the local Prefect server started when PREFECT_API_URL is not set.")
    ] = DEFAULT_PORT,
) -> None:
    """Serve the retraining flow on a schedule until stopped (Ctrl-C or SIGTERM pauses the schedule).

    Uses the Prefect server at PREFECT_API_URL, or starts a local one (with its scheduler and UI) for as
    long as this command runs. One run at a time: a run that finds the workspace busy waits for it.
    """
    if not drop.is_dir():
        raise FileNotFoundError(f"drop folder {drop} does not exist")
    parameters = {"drop": str(drop.resolve()), "dataset": dataset}
    serve_flow("retrain", cron, parameters, timezone=timezone, name=name, port=port)


def serve_flow(
    flow: Literal["retrain", "monitor"],
    cron: str,
    parameters: dict[str, Any],
    *,
    timezone: str = "UTC",
    name: str | None = None,
    port: int = DEFAULT_PORT,
) -> None:
    """Serve ``flow`` with ``parameters`` on ``cron`` until stopped (``ecgops schedule``, ``ecgops monitor
    --schedule``)."""
    import os

    from pydantic import ValidationError

    from components.orchestration.schedule import ServedDeployment, serve
    from components.orchestration.server import prefect_api, prepare_prefect_home

    try:
        from prefect.client.schemas.schedules import CronSchedule

        CronSchedule(cron=cron, timezone=timezone)
    except ValidationError as exc:
        message = "; ".join(str(e["msg"]) for e in exc.errors())
        hint = "--cron" if flow == "retrain" else "--schedule"
        raise typer.BadParameter(f"{cron!r} in {timezone}: {message}", param_hint=hint) from None
    settings = get_settings()
    # the runs the deployment starts are separate processes: they find the workspace through the environment
    os.environ["ECGOPS_WORKSPACE"] = str(settings.workspace.resolve())
    prepare_prefect_home(settings)
    deployment = ServedDeployment(
        flow=flow, name=name or f"ecgops-{flow}", cron=cron, timezone=timezone, parameters=parameters
    )
    with prefect_api(full_server=True, port=port) as url:
        shown = ", ".join(f"{k} {v}" for k, v in parameters.items() if v is not None)
        console.print(
            f"[bold green]serving[/] deployment {flow}/{deployment.name}: cron {cron!r} ({timezone}), "
            f"{shown}, Prefect API {url}"
        )
        serve(deployment)
