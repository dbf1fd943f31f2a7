"""``ecgops ingest`` and ``ecgops data …``: the CLI face of :mod:`components.io`."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from components.config import DATASET_NAME
from components.io.datasets import ingest_and_version, list_versions, restore_version
from components.io.ingest import IngestOptions, IngestSummary, ingest
from components.io.sources import FORMATS
from components.workspace import Workspace

console = Console(stderr=True, soft_wrap=True)
data_app = typer.Typer(help="Dataset versions (DVC).", no_args_is_help=True)


def ingest_command(
    source: Annotated[Path, typer.Argument(help="The drop folder (PTB-XL, PhysioNet/CinC or WFDB records).")],
    format: Annotated[str, typer.Option("--format", help=f"One of {', '.join(FORMATS)}.")] = "auto",
    dataset: Annotated[
        str | None, typer.Option(help="Dataset name (default: params.yaml ingest.dataset).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")] = False,
    strict: Annotated[bool, typer.Option(help="Exit 1 when any record was quarantined.")] = False,
    version: Annotated[bool, typer.Option(help="Version the store with DVC when it changed.")] = True,
) -> None:
    """Ingest a hospital drop into the canonical store and version it with DVC."""
    if format not in FORMATS:
        raise typer.BadParameter(f"--format must be one of {', '.join(FORMATS)}", param_hint="--format")
    if dataset is not None and not re.fullmatch(DATASET_NAME, dataset):
        raise typer.BadParameter(
            f"{dataset!r} is not a dataset name (data/<name>): letters, digits, '_', '.', '-'",
            param_hint="--dataset",
        )
    run = ingest_and_version if version else ingest
    summary = run(
        Workspace.current(), source, dataset=dataset, fmt=format, options=IngestOptions(progress=not as_json)
    )
    if as_json:
        typer.echo(json.dumps(summary.to_dict(), indent=2, default=str))
    else:
        _print_summary(summary)
    if strict and summary.quarantined:
        raise typer.Exit(1)


def _print_summary(summary: IngestSummary) -> None:
    table = Table(title=f"ingest {summary.drop} → {summary.dataset} ({summary.format})", show_header=False)
    table.add_row("records seen", str(summary.seen))
    table.add_row("ingested", f"[green]{summary.ingested}[/]")
    table.add_row("duplicates", str(summary.duplicates))
    table.add_row("quarantined", f"[red]{summary.quarantined}[/]" if summary.quarantined else "0")
    if summary.rows_without_signals:
        table.add_row("metadata rows without signal files", str(summary.rows_without_signals))
    table.add_row(
        "splits (new records)", ", ".join(f"{k} {v}" for k, v in sorted(summary.split_counts.items()))
    )
    table.add_row("time", f"{summary.elapsed_s:.2f} s ({summary.records_per_s:.0f} records/s)")
    table.add_row("store", summary.store)
    if summary.version:
        changed = "new version" if summary.version["changed"] else "unchanged"
        table.add_row(
            "dataset version",
            f"[bold]{summary.version['md5']}[/] ({changed}, pushed to {summary.version['remote']})",
        )
    console.print(table)
    for item in summary.quarantine_reasons[:20]:
        console.print(f"  [red]quarantined[/] {item['record']}: {item['reason']}")
    if len(summary.quarantine_reasons) > 20:
        console.print(
            f"  … and {len(summary.quarantine_reasons) - 20} more (see {summary.store}/quarantine.parquet)"
        )


@data_app.command("checkout")
def checkout_command(
    version: Annotated[str, typer.Argument(help="Dataset version: DVC md5 or a unique prefix of one.")],
) -> None:
    """Restore data/ to an earlier dataset version, bit-exactly."""
    restored = restore_version(Workspace.current(), version)
    console.print(f"data/ is now at version [bold]{restored.md5}[/]")


@data_app.command("versions")
def versions_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """List the dataset versions this workspace knows."""
    versions = list_versions(Workspace.current())
    if as_json:
        typer.echo(json.dumps(versions, indent=2, default=str))
        return
    table = Table("md5", "current", "source of the entry")
    for item in versions:
        table.add_row(item["md5"], "✓" if item["current"] else "", item["known_from"])
    console.print(table)
