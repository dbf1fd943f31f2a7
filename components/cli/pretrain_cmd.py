"""``ecgops pretrain``: the CLI face of :func:`components.training.pretrain`.

Register with ``app.command("pretrain")(pretrain_command)``. ``python -m components.cli.pretrain_cmd``
runs the command alone (Lightning's DDP launcher re-runs exactly this command in each extra process).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from components.training.stage import PretrainResult

console = Console(stderr=True, soft_wrap=True)


def pretrain_command(
    dataset: Annotated[
        str | None, typer.Option(help="Dataset under data/ (default: params.yaml pretrain/ingest.dataset).")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the last run from its checkpoint.")
    ] = False,
    recipe: Annotated[
        str | None,
        typer.Option(
            help="Pretraining recipe (schemas/recipes; `ecgops recipes`); default: pretrain.recipe."
        ),
    ] = None,
    max_epochs: Annotated[int | None, typer.Option(help="Override pretrain.max_epochs.")] = None,
    devices: Annotated[str, typer.Option(help="Devices per node: a count or 'auto'.")] = "1",
    strategy: Annotated[str, typer.Option(help="Lightning strategy: auto, ddp, ddp_spawn, ...")] = "auto",
    accelerator: Annotated[str, typer.Option(help="auto, cpu, gpu, ...")] = "auto",
    register: Annotated[bool, typer.Option(help="Record the run and the model in the registry.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")] = False,
) -> None:
    """Pretrain the ECG–report foundation model, publish it (safetensors + JSON) and register it."""
    from components.runs.lifecycle import RunOptions
    from components.training.stage import pretrain
    from components.workspace import Workspace

    options = RunOptions(
        resume=resume,
        register=register,
        progress=not as_json,
        max_epochs=max_epochs,
        accelerator=accelerator,
        devices=int(devices) if devices.isdigit() else devices,
        strategy=strategy,
    )
    workspace = Workspace.current()
    if recipe is not None:
        from components.training.recipes import with_recipe_of

        workspace = workspace.with_params(pretrain=with_recipe_of(workspace, recipe))
    result = pretrain(workspace, dataset, options)
    if result is None:
        return
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, default=str))
        return
    console.print(result_table(result))


def result_table(result: PretrainResult) -> Table:
    """What a pretraining run produced, for people: model, data, steps, the probe (and zero-shot and
    retrieval with a text space), time."""
    table = Table(title=f"pretrain on {result.dataset}", show_header=False)
    table.add_row("model", result.model_ref or "(not registered)")
    table.add_row("artifact", str(result.model_dir))
    table.add_row("dataset version", result.dataset_version or "(not versioned)")
    table.add_row("epochs / steps", f"{result.epochs} / {result.steps}")
    if result.resumed_from_epoch is not None:
        table.add_row("resumed after epoch", str(result.resumed_from_epoch))
    table.add_row("train records", str(result.train_records))
    evaluation = result.evaluation
    metrics = evaluation["metrics"]
    table.add_row(
        f"linear-probe macro AUROC ({evaluation['split']}, {evaluation['n_probe_records']} records)",
        f"{metrics['probe_macro_auroc']:.3f}",
    )
    if "zero_shot_macro_auroc" in metrics:
        table.add_row(
            f"zero-shot macro AUROC ({evaluation['split']}, prompts: {evaluation['language']})",
            f"{metrics['zero_shot_macro_auroc']:.3f}",
        )
        for k in (1, 5, 10):
            table.add_row(
                f"ECG→report recall@{k}",
                f"{metrics[f'retrieval_recall@{k}']:.3f} (chance {metrics[f'retrieval_chance@{k}']:.3f})",
            )
    table.add_row("time", f"{result.elapsed_s:.1f} s")
    return table


def recipes_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """List the pretraining recipes (schemas/recipes): the paper each follows and its settings as this
    workspace resolves them (its pretrain: keys over the recipe's)."""
    from components.training.params import OBJECTIVES
    from components.training.recipes import load_recipe, recipe_names, with_recipe_of
    from components.workspace import Workspace

    workspace = Workspace.current()
    chosen = workspace.params.pretrain.recipe
    rows = []
    for name in recipe_names():
        recipe, resolved = load_recipe(name), with_recipe_of(workspace, name)
        rows.append(
            recipe.model_dump(exclude={"settings"})
            | {"selected": name == chosen, "config_sha256": resolved.config_sha256}
            | {"settings": resolved.model_dump(mode="json")}
        )
    if as_json:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    table = Table(title="pretraining recipes (schemas/recipes; * = pretrain.recipe)")
    for column in ("recipe", "method", "encoder", "objectives", "paper", "config sha256"):
        table.add_column(column)
    for row in rows:
        mark = "* " if row["selected"] else "  "
        settings = row["settings"]
        objectives = ", ".join(
            f"{name} {settings['objectives'][name]:g}"
            for name in OBJECTIVES
            if settings["objectives"][name] > 0
        )
        encoder = settings["ecg"]["arch"]
        table.add_row(
            mark + row["name"], row["title"], encoder, objectives, row["paper"], row["config_sha256"][:12]
        )
    Console().print(table)


if __name__ == "__main__":
    typer.run(pretrain_command)
