"""``ecgops run``: the retraining flow, end to end, under Prefect."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from components.config import get_settings

if TYPE_CHECKING:
    from components.io.ingest import IngestSummary
    from components.orchestration.outcomes import RetrainOutcome

console = Console(stderr=True, soft_wrap=True)


def run_command(
    drop: Annotated[Path, typer.Option(help="The new hospital drop to train on.")] = Path("samples"),
    dataset: Annotated[str | None, typer.Option(help="Dataset name (default: params.yaml).")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the run's result as JSON on stdout.")
    ] = False,
) -> None:
    """Run the retraining flow (Prefect) on a drop and say where everything landed.

    Exit code 1 when validation blocked the data or a task model failed its gate.
    """
    from components.orchestration.errors import ValidationBlocked
    from components.orchestration.server import prefect_api, prepare_prefect_home

    settings = get_settings()
    if not drop.is_dir():
        raise FileNotFoundError(f"drop folder {drop} does not exist")
    prepare_prefect_home(settings)
    with prefect_api():
        from flows.retrain import retrain

        try:
            result = retrain(str(drop.resolve()), dataset)
        except ValidationBlocked as exc:
            console.print(f"[bold red]retrain stopped:[/] {exc}")
            raise typer.Exit(1) from exc
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        for line in report_lines(result):
            console.print(line)
    if not result.all_passed:
        raise typer.Exit(1)


def ingest_line(ingest: IngestSummary, cached: bool) -> str:
    """What ingest did; a cached ingest means the drop has not changed since it was read."""
    if cached:
        return f"drop unchanged since ingest {ingest.ingest_id}: nothing new"
    return (
        f"{ingest.ingested} new, {ingest.duplicates} duplicates, {ingest.quarantined} quarantined at ingest"
    )


def report_lines(result: RetrainOutcome) -> list[str]:
    """Where the run's outputs are, and what to run next."""
    ingest, validation, version = result.ingest.summary, result.validation, result.version
    foundation = result.foundation
    probe = foundation.metrics.get("probe_macro_auroc", float("nan"))
    decision = foundation.decision.action if foundation.decision else "?"
    reused = [stage for stage, hit in result.cached.items() if hit]
    lines = [
        f"[bold green]retrain finished[/] on {ingest.drop} in {result.elapsed_s:.0f} s "
        f"(Prefect flow run {result.flow_run_id})",
        f"  records            {ingest_line(ingest, result.cached['ingest'])}",
        f"  validation         {validation.verdict}: {validation.n_quarantined} records await review",
        f"  validation report  {validation.summary_html}",
        f"  dataset version    {version.md5} (DVC remote {version.version.remote})",
        f"  foundation model   {foundation.model_ref} ({decision}): linear-probe "
        f"macro AUROC {probe:.3f} — {foundation.model_dir}",
    ]
    serve = []
    for name, task in result.tasks.items():
        gate = task.evaluation.gate
        lines.append(f"  task {name:<13} {task.finetune.model_ref}: gate {gate.verdict if gate else 'none'}")
        lines.append(f"    evaluation report {task.evaluation.result.report_html}")
        if task.package:
            bento = task.package.result
            lines.append(f"    Bento             {bento.tag} → {bento.uri}")
            promoted = task.promotion.endswith("-> staging")
            serve.append(f"ecgops serve {name}@staging" if promoted else f"ecgops serve {bento.tag}")
        lines.append(f"    stage             {task.promotion}")
    lines += [
        f"  registry           {result.registry}",
        f"  reused             {', '.join(reused) or 'nothing (everything ran)'}",
    ]
    lines += [f"  serve the model    {command}" for command in serve]
    lines.append("  next               ecgops review list · ecgops registry models · ecgops registry audit")
    return lines
