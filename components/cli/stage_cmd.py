"""``ecgops stage NAME``: one pipeline stage with fixed output paths under ``pipeline/`` — what the stages
of ``dvc.yaml`` run (``dvc repro``, ``dvc exp run``). Register with ``app.command("stage")(stage_command)``.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

from components.workspace import Workspace

console = Console(stderr=True, soft_wrap=True)
STAGE_NAMES = ("validate", "pretrain", "finetune", "evaluate", "package")


def stage_command(
    name: Annotated[str, typer.Argument(help=f"One of {', '.join(STAGE_NAMES)}.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the stage's result as JSON on stdout.")
    ] = False,
) -> None:
    """Run one stage of the pipeline on the checked-out dataset version (as dvc.yaml does).

    Exit code 1 when validation blocks the dataset, so `dvc repro` stops there.
    """
    from components.dvc_stages import STAGES

    if name not in STAGES:
        raise typer.BadParameter(f"unknown stage {name!r}: use one of {', '.join(STAGE_NAMES)}")
    result = STAGES[name](Workspace.current())
    if as_json:
        typer.echo(json.dumps(result, indent=2, default=str))
    else:
        console.print(f"[bold green]stage {name} done[/]: outputs under pipeline/")
    if name == "validate" and result["blocked"]:
        console.print(f"[bold red]validation blocked the dataset:[/] see {result['paths']['summary_html']}")
        raise typer.Exit(1)
