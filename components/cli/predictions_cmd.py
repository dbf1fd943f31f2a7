"""``ecgops predictions``: the CLI face of :mod:`components.predictions` (query and prune the log).

Register with ``app.command("predictions")(predictions_command)``. ``--json`` prints one JSON object:
``{"log", "total", "entries": [...], "skipped": [{"path", "reason"}]}``, each entry shaped like a
``PredictionEntry`` (quality features nested, NaN as null), oldest first.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    import pandas as pd

    from components.predictions.log import LogWindow, PredictionLog
    from components.workspace import Workspace

console = Console()

TABLE_LIMIT = 20


class Source(StrEnum):
    served = "served"
    batch = "batch"
    shadow = "shadow"


def predictions_command(
    since: Annotated[
        str | None,
        typer.Option(
            help="From this time: an ISO date or date-time (UTC unless it names a zone) or a duration back "
            "from now: 30m, 12h, 7d, 2w."
        ),
    ] = None,
    until: Annotated[str | None, typer.Option(help="Before this time (the same forms as --since).")] = None,
    model: Annotated[
        str | None, typer.Option(metavar="REF", help="A task model: name@version, or a name (every version).")
    ] = None,
    task: Annotated[str | None, typer.Option(help="Only this task.")] = None,
    source: Annotated[Source | None, typer.Option(help="Only served, batch or shadow predictions.")] = None,
    limit: Annotated[
        int | None,
        typer.Option(min=1, help=f"The newest N entries (table: {TABLE_LIMIT} by default; --json: all)."),
    ] = None,
    prune: Annotated[
        bool,
        typer.Option("--prune", help="Remove the days older than prediction_log.retention_days; print them."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
) -> None:
    """Show the prediction log: what was predicted, by which model, when (newest last)."""
    from components.predictions.log import entry_records
    from components.workspace import Workspace

    workspace = Workspace.current()
    log = workspace.prediction_log()
    if prune:
        _prune(workspace, log, as_json)
        return
    now = datetime.now(UTC)
    window = log.read(
        since=_instant(since, "--since", now),
        until=_instant(until, "--until", now),
        model=model,
        task=task,
        source=source.value if source else None,
    )
    if as_json:
        shown = window.frame if limit is None else window.frame.tail(limit)
        document = {
            "log": log.url,
            "total": len(window.frame),
            "entries": entry_records(shown),
            "skipped": [{"path": s.path, "reason": s.reason} for s in window.skipped],
        }
        typer.echo(json.dumps(document, indent=2))
        return
    _print_window(log, window, limit or TABLE_LIMIT)


def _instant(value: str | None, option: str, now: datetime) -> datetime | None:
    """``value`` of ``option`` as an aware datetime; a bad one is a usage error naming the option."""
    from components.predictions.when import parse_instant

    if value is None:
        return None
    try:
        return parse_instant(value, now)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=f"'{option}'") from None


def _prune(workspace: Workspace, log: PredictionLog, as_json: bool) -> None:
    retention = workspace.params.prediction_log.retention_days
    removed = [] if retention is None else log.prune(retention)
    if as_json:
        typer.echo(json.dumps({"log": log.url, "retention_days": retention, "removed": removed}, indent=2))
        return
    if retention is None:
        console.print("prediction_log.retention_days is null: the log is kept whole, nothing removed")
        return
    for path in removed:
        console.print(f"removed {escape(path)}")
    console.print(f"{len(removed)} day(s) older than {retention} days removed from {escape(log.url)}")


def _print_window(log: PredictionLog, window: LogWindow, limit: int) -> None:
    frame = window.frame
    shown = frame.tail(limit)
    table = Table(title=f"prediction log {escape(log.url)}")
    for column in ("time (UTC)", "task", "model", "source", "positive labels", "windows"):
        table.add_column(column, no_wrap=column != "positive labels")
    for row in shown.to_dict("records"):
        positive = [label for label, yes in zip(row["labels"], row["decisions"], strict=True) if yes]
        table.add_row(
            f"{row['time']:%Y-%m-%d %H:%M:%S}",
            escape(row["task"]),
            escape(row["model_ref"]),
            row["source"],
            escape(", ".join(positive)) or "-",
            str(row["n_windows"]),
        )
    console.print(table)
    console.print(_totals(frame, len(shown)))
    for part in window.skipped:
        console.print(f"[yellow]skipped {escape(part.path)}: {escape(part.reason)}[/]")


def _totals(frame: pd.DataFrame, shown: int) -> str:
    """Entries in the window (per source), their time span, and how many the table shows."""
    if frame.empty:
        return "no entries"
    counts = frame["source"].value_counts()
    by_source = ", ".join(f"{name} {n}" for name, n in sorted(counts.items()))
    first, last = frame["time"].iloc[0], frame["time"].iloc[-1]
    newest = f", the newest {shown} shown" if shown < len(frame) else ""
    return f"{len(frame)} entries ({by_source}) from {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M}{newest}"
