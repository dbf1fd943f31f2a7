"""One Prefect flow per pipeline stage; each calls the stage's function in :mod:`components`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.tasks import exponential_backoff

from components.io.datasets import ingest_and_version


@task(name="ingest-and-version", retries=2, retry_delay_seconds=exponential_backoff(backoff_factor=2))
def ingest_task(drop: str, dataset: str | None) -> dict[str, Any]:
    """Ingest the drop into the canonical store and version it with DVC (retried: it is I/O)."""
    return ingest_and_version(Path(drop), dataset=dataset, progress=False).to_dict()


@flow(name="ingest")
def ingest_flow(drop: str, dataset: str | None = None) -> dict[str, Any]:
    """Stage flow: a hospital drop in, a new dataset version out."""
    summary = ingest_task(drop, dataset)
    create_table_artifact(
        key="ingest-counts",
        table=[
            {k: summary[k] for k in ("seen", "ingested", "duplicates", "quarantined", "rows_without_signals")}
        ],
        description=f"Ingest of {drop} into {summary['dataset']}",
    )
    if summary["quarantine_reasons"]:
        create_table_artifact(
            key="ingest-quarantine",
            table=summary["quarantine_reasons"][:500],
            description="Records quarantined at ingest, with reasons",
        )
    return summary


def summary_markdown(ingest: dict[str, Any]) -> str:
    """The run's markdown summary (a Prefect artifact)."""
    version = ingest.get("version") or {}
    lines = [
        "# ecgops retrain",
        f"- drop: `{ingest['drop']}` ({ingest['format']})",
        f"- records: {ingest['seen']} seen, {ingest['ingested']} new, {ingest['duplicates']} duplicates, "
        f"{ingest['quarantined']} quarantined",
        f"- store: `{ingest['store']}`",
        f"- dataset version: `{version.get('md5')}`",
    ]
    return "\n".join(lines) + "\n"


@flow(name="retrain")
def retrain(drop: str, dataset: str | None = None) -> dict[str, Any]:
    """The main job: drop → ingest → version (later stages are added here as they land)."""
    ingest = ingest_flow(drop, dataset)
    create_markdown_artifact(
        key="retrain-summary", markdown=summary_markdown(ingest), description="What this retraining run did"
    )
    return {"ingest": ingest}
