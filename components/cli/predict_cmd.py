"""``ecgops predict``: batch inference over a drop, the CLI face of :mod:`components.inference`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from components.io.sources import FORMATS
from components.workspace import Workspace

console = Console(stderr=True, soft_wrap=True)


def predict_command(
    drop: Annotated[Path, typer.Argument(help="The drop folder to score (any drop `ecgops ingest` reads).")],
    model: Annotated[
        str, typer.Option("--model", help="TASK@STAGE (e.g. ptbxl-rhythm@production) or name@version.")
    ],
    out: Annotated[
        str | None,
        typer.Option(help="Output folder, a path or fsspec URL (default: .ecgops/batch/<task>/<time>)."),
    ] = None,
    format: Annotated[str, typer.Option("--format", help=f"One of {', '.join(FORMATS)}.")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")] = False,
) -> None:
    """Score every record of a drop with a registered task model, without HTTP: Parquet predictions, a
    quarantine of the records that could not be read, and entries in the prediction log."""
    from components.inference.batch import BatchRequest, predict_drop

    if format not in FORMATS:
        raise typer.BadParameter(f"--format must be one of {', '.join(FORMATS)}", param_hint="--format")
    request = BatchRequest(drop=drop, model=model, out=out, format=format)
    result = predict_drop(Workspace.current(), request, progress=not as_json)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, default=str))
        return
    table = Table(title=f"predict {drop} with {result.model_ref}", show_header=False)
    table.add_row("predicted", f"[green]{result.n_predicted}[/] ({result.records_per_s:.0f} records/s)")
    table.add_row("quarantined", f"[red]{result.n_quarantined}[/]" if result.n_quarantined else "0")
    table.add_row("bento", result.bento or "(never packaged)")
    table.add_row("dataset version", result.dataset_version or "(unknown)")
    failures = f", [red]{result.log_failures} failed writes[/]" if result.log_failures else ""
    table.add_row("prediction log", f"{result.n_logged} entries{failures}")
    table.add_row("output", result.out)
    console.print(table)
