"""``ecgops schedule``: serve a Prefect deployment of ``retrain`` that runs on a cron schedule.

Register with ``app.command("schedule")(schedule_command)``. ``prefect.yaml`` describes the same
deployment for a Prefect work pool (``prefect deploy``) when runs should happen on other machines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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
    import os

    from pydantic import ValidationError

    from components.orchestration.schedule import ServedDeployment, serve
    from components.orchestration.server import prefect_api, prepare_prefect_home

    try:
        from prefect.client.schemas.schedules import CronSchedule

        CronSchedule(cron=cron, timezone=timezone)
    except ValidationError as exc:
        message = "; ".join(str(e["msg"]) for e in exc.errors())
        raise typer.BadParameter(f"{cron!r} in {timezone}: {message}", param_hint="--cron") from None
    if not drop.is_dir():
        raise FileNotFoundError(f"drop folder {drop} does not exist")
    settings = get_settings()
    # the runs the deployment starts are separate processes: they find the workspace through the environment
    os.environ["ECGOPS_WORKSPACE"] = str(settings.workspace.resolve())
    prepare_prefect_home(settings)
    deployment = ServedDeployment(
        name=name,
        cron=cron,
        timezone=timezone,
        parameters={"drop": str(drop.resolve()), "dataset": dataset},
    )
    with prefect_api(full_server=True, port=port) as url:
        console.print(
            f"[bold green]serving[/] deployment retrain/{name}: cron {cron!r} ({timezone}), "
            f"drop {drop.resolve()}, Prefect API {url}"
        )
        serve(deployment)
