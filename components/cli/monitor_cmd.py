"""``ecgops monitor`` and ``ecgops shadow``: the production loop's CLI face (:mod:`components.monitoring`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from components.workspace import Workspace

console = Console(stderr=True, soft_wrap=True)
STATUS_STYLE = {"ok": "green", "breach": "bold red", "insufficient": "yellow"}


def monitor_command(
    task: Annotated[str, typer.Argument(help="The task whose production model is monitored.")],
    policy: Annotated[str, typer.Option(help="schemas/monitoring/<policy>.yaml")] = "default",
    stage: Annotated[str, typer.Option(help="The stage whose model is monitored.")] = "production",
    drops: Annotated[
        Path | None,
        typer.Option(
            help="Folder of drops: on a breach whose policy says retrain, retrain on the newest one."
        ),
    ] = None,
    schedule: Annotated[
        str | None,
        typer.Option(help='Serve the monitor flow on this cron schedule (e.g. "0 6 * * *").'),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON on stdout.")] = False,
) -> None:
    """Compare the production model's logged window with the data it was trained on: signal-quality drift
    per site and device, embedding drift (MMD), predicted-positive rates. Exit 1 on a breach."""
    from components.orchestration.server import prefect_api, prepare_prefect_home

    if schedule is not None:
        from components.cli.schedule_cmd import serve_flow

        parameters = {"task_name": task, "policy": policy, "drops": _path(drops), "stage": stage}
        serve_flow("monitor", schedule, parameters)
        return
    prepare_prefect_home(Workspace.current().settings)
    with prefect_api():
        from flows.production import monitor_flow

        outcome = monitor_flow(task, policy, _path(drops), stage)
    if as_json:
        typer.echo(json.dumps(outcome.to_dict(), indent=2, default=str))
    else:
        style = STATUS_STYLE.get(outcome.status, "")
        console.print(
            f"[{style}]{outcome.status}[/]: {outcome.model_ref}, {outcome.n_window} logged "
            f"predictions against {outcome.n_reference} reference records ({outcome.policy})"
        )
        for reason in outcome.reasons:
            console.print(f"  {reason}")
        console.print(f"report: {outcome.report}\ngauges: {outcome.gauges}")
    if outcome.status == "breach":
        raise typer.Exit(1)


def shadow_command(
    task: Annotated[str, typer.Argument(help="The task whose production model the candidate shadows.")],
    candidate: Annotated[str, typer.Option(help="The candidate task model, name@version.")],
    drop: Annotated[
        Path | None, typer.Option(help="Replay this drop (default: the production model's logged window).")
    ] = None,
    days: Annotated[float, typer.Option(help="How far back the logged window reaches.")] = 7.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
) -> None:
    """Replay records through the candidate and the production model: per-label agreement, Cohen's kappa,
    flip rates and, where labels exist, AUROC deltas. Recorded in the registry; exit 1 when it fails the
    candidate's gate policy."""
    from components.monitoring.shadow import ShadowRequest, shadow

    outcome = shadow(Workspace.current(), ShadowRequest(task=task, candidate=candidate, drop=drop, days=days))
    if as_json:
        typer.echo(json.dumps(outcome.to_dict(), indent=2, default=str))
    else:
        table = Table(
            title=f"shadow: {outcome.candidate} vs {outcome.production} on {outcome.n_records} records"
        )
        for column in ("label", "agreement", "kappa", "flips to +", "flips to −"):
            table.add_column(column, justify="left" if column == "label" else "right")
        for row in outcome.agreement:
            table.add_row(
                row["label"],
                f"{row['agreement']:.3f}",
                f"{row['kappa']:.3f}",
                str(row["flips_to_positive"]),
                str(row["flips_to_negative"]),
            )
        console.print(table)
        if outcome.n_missing:
            console.print(
                f"[yellow]{outcome.n_missing} logged inputs are in no store and were not replayed[/]"
            )
        verdict = "[green]passed[/]" if outcome.passed else "[bold red]failed[/]"
        console.print(f"{verdict} {'; '.join(outcome.reasons)}\nreport: {outcome.report}")
    if not outcome.passed:
        raise typer.Exit(1)


def _path(path: Path | None) -> str | None:
    return str(path.resolve()) if path is not None else None
