"""``ecgops finetune`` and ``ecgops tasks``: the CLI face of :mod:`components.finetune`.

Register with ``app.command("finetune")(finetune_command)`` and ``app.command("tasks")(tasks_command)``.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

console = Console(stderr=True, soft_wrap=True)


class Mode(StrEnum):
    linear_probe = "linear_probe"
    finetune = "finetune"
    scratch = "scratch"


def finetune_command(
    task: Annotated[
        str, typer.Option("--task", help="Task name (schemas/tasks/<task>.yaml) or a task file.")
    ],
    from_model: Annotated[
        str | None,
        typer.Option("--from", help="Foundation model (name@version or a directory); default: the newest."),
    ] = None,
    mode: Annotated[Mode | None, typer.Option(help="Default: params.yaml finetune.mode.")] = None,
    label_fraction: Annotated[
        float | None, typer.Option(help="Share of the training patients whose labels are used, e.g. 0.1.")
    ] = None,
    dataset: Annotated[str | None, typer.Option(help="Dataset under data/ (default: params.yaml).")] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the same run from its checkpoint.")
    ] = False,
    max_epochs: Annotated[int | None, typer.Option(help="Override finetune.max_epochs.")] = None,
    accelerator: Annotated[str, typer.Option(help="auto, cpu, gpu, ...")] = "auto",
    register: Annotated[bool, typer.Option(help="Record the run and the model in the registry.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")] = False,
) -> None:
    """Fine-tune a task model from a foundation model (linear probe, full fine-tune) or from scratch."""
    from components.finetune.stage import FinetuneRequest, finetune
    from components.runs.lifecycle import RunOptions
    from components.workspace import Workspace

    request = FinetuneRequest(task, dataset, from_model, mode.value if mode else None, label_fraction)
    options = RunOptions(
        resume=resume, register=register, progress=not as_json, max_epochs=max_epochs, accelerator=accelerator
    )
    result = finetune(Workspace.current(), request, options)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, default=str))
        return
    table = Table(title=f"finetune {result.task} ({result.mode}) on {result.dataset}", show_header=False)
    table.add_row("model", result.model_ref or "(not registered)")
    table.add_row("artifact", str(result.model_dir))
    table.add_row("foundation", result.foundation or "none (scratch)")
    table.add_row("dataset version", result.dataset_version or "(not versioned)")
    table.add_row(
        "training labels",
        f"{result.train_records} records of {result.train_patients} patients "
        f"(fraction {result.label_fraction:g})",
    )
    table.add_row("epochs / best / steps", f"{result.epochs} / {result.best_epoch} / {result.steps}")
    if result.resumed_from_epoch is not None:
        table.add_row("resumed after epoch", str(result.resumed_from_epoch))
    table.add_row(
        "validation macro AUROC", f"{result.val_metrics['macro_auroc']:.3f} ({result.val_records} records)"
    )
    table.add_row("thresholds", ", ".join(f"{k} {v:.3f}" for k, v in result.thresholds.items()))
    table.add_row("time", f"{result.elapsed_s:.1f} s")
    console.print(table)
    if result.model_ref:
        console.print(f"next: ecgops evaluate {result.model_ref}")


def tasks_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """List the tasks in schemas/tasks with labels, leads and gate policy (each file is validated)."""
    from components.evaluation.gates import load_policy
    from components.tasks.mapping import load_mapping
    from components.tasks.spec import load_task, task_names

    rows: list[dict[str, Any]] = []
    for name in task_names():
        spec = load_task(name)
        policy = load_policy(spec.gate_policy)
        load_mapping(spec.mapping)
        rows.append(
            {
                "task": spec.name,
                "version": spec.version,
                "title": spec.title,
                "label_system": spec.label_system,
                "labels": spec.label_names,
                "leads": spec.leads,
                "fs": spec.fs,
                "gate": policy.ref,
            }
        )
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="tasks (schemas/tasks)")
    table.add_column("task", no_wrap=True)
    table.add_column("labels")
    table.add_column("leads")
    table.add_column("gate", no_wrap=True)
    for row in rows:
        leads = row["leads"]
        shown = "12-lead" if len(leads) == 12 else ", ".join(leads)
        table.add_row(
            f"{row['task']} v{row['version']}",
            f"{row['label_system']}: {', '.join(row['labels'])}",
            shown,
            row["gate"],
        )
    Console().print(table)


if __name__ == "__main__":
    typer.run(finetune_command)
