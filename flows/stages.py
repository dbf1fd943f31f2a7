"""One Prefect flow per pipeline stage, composed into ``retrain``; each calls :mod:`components`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.tasks import exponential_backoff

from components.config import get_settings
from components.io.datasets import version_dataset
from components.io.ingest import ingest
from components.validation import ValidationResult

_INGEST_COUNTS = ("seen", "ingested", "duplicates", "quarantined", "rows_without_signals")


class ValidationBlocked(RuntimeError):
    """A block-severity expectation failed: the dataset must not be versioned or trained on."""


@task(name="ingest", retries=2, retry_delay_seconds=exponential_backoff(backoff_factor=2))
def ingest_task(drop: str, dataset: str | None) -> dict[str, Any]:
    """Read the drop into the canonical store (retried: it is I/O)."""
    return ingest(Path(drop), dataset=dataset, progress=False).to_dict()


@task(name="validate")
def validate_task(dataset: str) -> ValidationResult:
    """Quality features + GX suites + steward reports over the store."""
    from components.validation import validate

    return validate(dataset)


@task(name="version", retries=2, retry_delay_seconds=exponential_backoff(backoff_factor=2))
def version_task(dataset: str, validation: ValidationResult | None) -> dict[str, Any]:
    """DVC add + push, register the version, and record the validation run against it."""
    from components.registry import open_registry
    from components.validation import record_validation

    settings = get_settings()
    data_version = version_dataset(dataset, settings)
    if validation is not None:
        with open_registry(settings.resolved_registry_url) as registry:
            record_validation(validation, data_version.md5, registry)
    return data_version.to_dict()


@task(name="pretrain")
def pretrain_task(dataset: str) -> dict[str, Any]:
    """Signal-language pretraining on the versioned store; the model is registered with this flow run's id."""
    from prefect.runtime import flow_run

    from components.training.stage import pretrain

    result = pretrain(dataset, settings=get_settings(), flow_run_id=flow_run.get_id())
    assert result is not None  # single process: this is rank 0
    return result.to_dict()


@flow(name="ingest")
def ingest_flow(drop: str, dataset: str | None = None) -> dict[str, Any]:
    """Stage flow: a hospital drop in, new records in the canonical store."""
    summary = ingest_task(drop, dataset)
    create_table_artifact(
        key="ingest-counts",
        table=[{k: summary[k] for k in _INGEST_COUNTS}],
        description=f"Ingest of {drop} into {summary['dataset']}",
    )
    if summary["quarantine_reasons"]:
        create_table_artifact(
            key="ingest-quarantine",
            table=summary["quarantine_reasons"][:500],
            description="Records quarantined at ingest, with reasons",
        )
    return summary


@flow(name="validate")
def validate_flow(dataset: str) -> ValidationResult:
    """Stage flow: validate the store; a blocking failure fails the flow with the steward report linked."""
    result = validate_task(dataset)
    report = result.summary_html.as_uri()
    create_link_artifact(
        key="validation-report",
        link=report,
        link_text="steward summary",
        description=f"Validation of {dataset}: {result.verdict}",
    )
    create_table_artifact(
        key="validation-expectations",
        table=[
            {"id": e.id, "severity": e.severity, "success": e.success, "unexpected": e.unexpected_count}
            for e in result.expectations
        ],
        description="Expectations and their outcome",
    )
    if result.blocked:
        failed = [e.id for e in result.failed("block")]
        raise ValidationBlocked(f"dataset {dataset} failed blocking expectations {failed}; report: {report}")
    return result


@flow(name="version")
def version_flow(dataset: str, validation: ValidationResult | None = None) -> dict[str, Any]:
    """Stage flow: the validated store becomes a DVC dataset version in the registry."""
    return version_task(dataset, validation)


@flow(name="pretrain")
def pretrain_flow(dataset: str) -> dict[str, Any]:
    """Stage flow: the foundation model, its zero-shot and retrieval figures."""
    result = pretrain_task(dataset)
    metrics = result["evaluation"]["metrics"]
    create_table_artifact(
        key="pretrain-metrics",
        table=[{"metric": name, "value": round(float(value), 4)} for name, value in sorted(metrics.items())],
        description=f"Foundation model {result['model_ref']} on the {result['evaluation']['split']} split",
    )
    return result


def summary_markdown(outcome: dict[str, Any]) -> str:
    """The run's markdown summary (a Prefect artifact)."""
    ingest, validation, version = outcome["ingest"], outcome["validation"], outcome["version"]
    pretrain = outcome["pretrain"]
    return (
        "\n".join(
            [
                "# ecgops retrain",
                f"- drop: `{ingest['drop']}` ({ingest['format']})",
                f"- records: {ingest['seen']} seen, {ingest['ingested']} new, "
                f"{ingest['duplicates']} duplicates, {ingest['quarantined']} quarantined at ingest",
                f"- validation: **{validation['verdict']}** — {validation['n_quarantined']} quarantined, "
                f"{validation['n_accepted']} accepted by stewards; "
                f"[steward summary]({Path(validation['paths']['summary_html']).as_uri()})",
                f"- dataset version: `{version['md5']}` (DVC remote `{version['remote']}`)",
                f"- foundation model: `{pretrain['model_ref']}` — zero-shot macro AUROC "
                f"{pretrain['evaluation']['metrics']['zero_shot_macro_auroc']:.3f}, "
                f"artifact `{pretrain['model_dir']}`",
            ]
        )
        + "\n"
    )


@flow(name="retrain")
def retrain(drop: str, dataset: str | None = None) -> dict[str, Any]:
    """The main job: drop → ingest → validate (a block ends the run) → DVC version → pretrain.

    Later stages (fine-tune, evaluate, package, promote) are added here as they land.
    """
    ingest = ingest_flow(drop, dataset)
    validation = validate_flow(ingest["dataset"])
    version = version_flow(ingest["dataset"], validation)
    pretrain = pretrain_flow(ingest["dataset"])
    outcome = {"ingest": ingest, "validation": validation.to_dict(), "version": version, "pretrain": pretrain}
    create_markdown_artifact(
        key="retrain-summary", markdown=summary_markdown(outcome), description="What this retraining run did"
    )
    return outcome
