"""``ecgops run``: the retraining flow, end to end, under Prefect."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from components.config import Settings, get_settings

console = Console(stderr=True, soft_wrap=True)


def prepare_prefect_home(settings: Settings) -> None:
    """Keep Prefect's state (its SQLite database, the temporary server's) inside the workspace by default."""
    home = Path(os.environ.setdefault("PREFECT_HOME", str(settings.state_dir / "prefect")))
    home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # a fresh Prefect home migrates its database first; on 2 busy cores that outlasts the default 20 s
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")


def run_command(
    drop: Annotated[Path, typer.Option(help="The new hospital drop to train on.")] = Path("samples"),
    dataset: Annotated[str | None, typer.Option(help="Dataset name (default: params.yaml).")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the run's result as JSON on stdout.")
    ] = False,
) -> None:
    """Run the retraining flow (Prefect) on a drop and say where everything landed."""
    prepare_prefect_home(get_settings())
    from flows.stages import retrain

    result = retrain(str(drop), dataset)
    if as_json:
        typer.echo(json.dumps(result, indent=2, default=str))
        return
    settings = get_settings()
    ingest, validation, version = result["ingest"], result["validation"], result["version"]
    pretrain = result["pretrain"]
    zero_shot = pretrain["evaluation"]["metrics"]["zero_shot_macro_auroc"]
    paths = validation["paths"]
    lines = [
        f"[bold green]retrain finished[/] on {drop}",
        f"  records            {ingest['ingested']} new, {ingest['duplicates']} duplicates, "
        f"{ingest['quarantined']} quarantined at ingest",
        f"  store              {ingest['store']}",
        f"  validation         {validation['verdict']}: {validation['n_quarantined']} records await review",
        f"  validation report  {paths['summary_html']}",
        f"  GX Data Docs       {paths['data_docs_index']}",
        f"  dataset version    {version['md5']} (DVC remote {version['remote']})",
        f"  foundation model   {pretrain['model_ref']}: zero-shot macro AUROC {zero_shot:.3f} "
        f"on the {pretrain['evaluation']['split']} split",
        f"  model artifact     {pretrain['model_dir']}",
        f"  registry           {settings.resolved_registry_url}",
        "  next               ecgops review list · ecgops registry lineage "
        f"{pretrain['model_ref']} · ecgops registry audit",
    ]
    for line in lines:
        console.print(line)
