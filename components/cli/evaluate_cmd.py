"""``ecgops evaluate`` and ``ecgops gate``: the CLI face of :mod:`components.evaluation`.

Register with ``app.command("evaluate")(evaluate_command)`` and ``app.command("gate")(gate_command)``.
Both exit 1 when the gate fails (like ``ecgops validate`` on a blocking failure); promotion and packaging
refuse such a model unless forced with a reason (``ecgops registry promote --force --reason``).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console(stderr=True, soft_wrap=True)


def _print_reasons(reasons: list[str]) -> None:
    for reason in reasons:
        colour = "green" if reason.startswith("PASS") else "red"
        console.print(f"[{colour}]{escape(reason)}[/]", highlight=False)


def evaluate_command(
    model: Annotated[str, typer.Argument(help="Task model: name@version (or name for its latest version).")],
    external: Annotated[
        list[str] | None,
        typer.Option(
            "--external", help="Dataset under data/ to evaluate as an external cohort (repeatable)."
        ),
    ] = None,
    policy: Annotated[
        str | None, typer.Option(help="Gate policy (schemas/gates/<policy>.yaml); default: the task's.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")] = False,
) -> None:
    """Evaluate a task model: metrics with CIs, subgroups, external cohorts, production comparison, gate."""
    from components.evaluation.stage import evaluate
    from components.workspace import Workspace

    result = evaluate(Workspace.current(), model, external=external or None, gate_policy=policy)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        table = Table(title=f"evaluation of {result.model_ref}", show_header=False)
        macro = result.macro_auroc
        ci = f" ({macro['ci_low']:.3f}–{macro['ci_high']:.3f})" if macro["ci_low"] is not None else ""
        value = f"{macro['value']:.3f}{ci}" if macro["value"] is not None else "n/a"
        table.add_row(f"macro AUROC ({result.split}, {result.n_records} records)", value)
        for name, est in result.external.items():
            shown = f"{est['value']:.3f}" if est["value"] is not None else "n/a"
            table.add_row(f"external {name}: macro AUROC", shown)
        if result.comparison:
            diff = result.comparison["difference"]
            table.add_row(
                f"vs production {result.comparison['production']}",
                f"{diff['value']:+.3f}" if diff["value"] is not None else "n/a",
            )
        table.add_row("gate", f"{result.policy}: {result.verdict.upper()}")
        table.add_row("report", str(result.report_html))
        table.add_row("model card", str(result.model_card_md))
        console.print(table)
        _print_reasons(result.reasons)
    if result.verdict != "pass":
        raise typer.Exit(1)


def gate_command(
    model: Annotated[str, typer.Argument(help="Task model: name@version.")],
    policy: Annotated[
        str | None, typer.Option(help="Gate policy (schemas/gates/<policy>.yaml); default: the task's.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")] = False,
) -> None:
    """Decide a model's gate again from its latest evaluation and the registry as it is now."""
    from components.evaluation.stage import gate
    from components.workspace import Workspace

    result = gate(Workspace.current(), model, policy=policy)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        console.print(f"gate {result.policy} on {result.model_ref}: [bold]{result.verdict.upper()}[/]")
        _print_reasons(result.reasons)
    if result.verdict != "pass":
        raise typer.Exit(1)


if __name__ == "__main__":
    typer.run(evaluate_command)
