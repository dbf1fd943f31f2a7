"""Data stage flows: ingest, validate, version. Each calls :mod:`components`; caching, retries and the
artifacts are the only things added here."""

from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_link_artifact, create_table_artifact

from components.orchestration.cache import (
    Outcome,
    ingest_inputs,
    ingest_still_current,
    report_still_on_disk,
    run_here,
    run_task,
    stage_cache,
    validate_inputs,
    version_inputs,
    version_still_current,
)
from components.orchestration.errors import ValidationBlocked
from components.orchestration.outcomes import IngestOutcome, VersionOutcome
from components.orchestration.retries import io_retries
from components.orchestration.runners import TaskShards, on_dask, worker_identity
from components.orchestration.summary import ingest_counts
from components.validation import ValidationResult
from components.workspace import Workspace


@task(name="ingest", cache_policy=stage_cache("ingest", ingest_inputs))
def ingest_task(drop: str, dataset: str | None, sharded: bool = False) -> IngestOutcome:
    """Read the drop into the canonical store (the flow retries it: it is I/O). ``sharded``: this runs
    in the flow's process and the records are prepared in shards on the flow's Dask task runner."""
    from components.io.ingest import IngestOptions, ingest
    from components.io.sharding import Sharding
    from components.orchestration.fingerprints import store_state

    workspace = Workspace.current()
    shards = TaskShards("ingest") if sharded else None
    options = IngestOptions(
        progress=False, sharding=Sharding(shards, workspace.params.compute.shard_records) if shards else None
    )
    summary = ingest(workspace, Path(drop), dataset=dataset, options=options)
    store_after = store_state(workspace.settings, summary.dataset)
    return IngestOutcome(summary, store_after, worker_identity(), shards.ran_on if shards else [])


@task(name="validate", cache_policy=stage_cache("validate", validate_inputs))
def validate_task(dataset: str, sharded: bool = False) -> ValidationResult:
    """Quality features + GX suites + steward reports over the store. ``sharded``: this runs in the
    flow's process and the features are extracted in shards on the flow's Dask task runner."""
    from components.io.sharding import Sharding
    from components.validation import ValidateOptions, validate

    workspace = Workspace.current()
    if not sharded:
        return validate(workspace, dataset)
    shards = TaskShards("validate")
    options = ValidateOptions(sharding=Sharding(shards, workspace.params.compute.shard_records))
    result = validate(workspace, dataset, options=options)
    result.feature_shards = shards.ran_on
    result.write_json()
    return result


@task(name="version", cache_policy=stage_cache("version", version_inputs))
def version_task(dataset: str, validation: ValidationResult | None) -> VersionOutcome:
    """DVC add + push, register the version, and record the validation run against it."""
    from components.validation import version_validated

    data_version = version_validated(Workspace.current(), dataset, validation)
    run_id = validation.validation_run_id if validation else None
    return VersionOutcome(data_version, run_id, worker_identity())


@flow(name="ingest")
def ingest_flow(drop: str, dataset: str | None = None) -> Outcome:
    """Stage flow: a hospital drop in, new records in the canonical store."""
    ingest = ingest_task.with_options(**io_retries())
    if on_dask():  # this process writes the store; the shards' records are prepared on the cluster
        outcome = run_here(ingest, drop, dataset, True, still_valid=ingest_still_current)
    else:
        outcome = run_task(ingest, drop, dataset, still_valid=ingest_still_current)
    summary = outcome.value.summary
    create_table_artifact(
        key="ingest-counts",
        table=[ingest_counts(summary)],
        description=f"Ingest of {drop} into {summary.dataset}",
    )
    if summary.quarantine_reasons:
        create_table_artifact(
            key="ingest-quarantine",
            table=summary.quarantine_reasons[:500],
            description="Records quarantined at ingest, with reasons",
        )
    return outcome


@flow(name="validate")
def validate_flow(dataset: str) -> Outcome:
    """Stage flow: validate the store; a blocking failure fails the flow with the steward report linked."""
    if on_dask():  # the GX suites and reports run here once; the features in shards on the cluster
        outcome = run_here(validate_task, dataset, True, still_valid=report_still_on_disk)
    else:
        outcome = run_task(validate_task, dataset, still_valid=report_still_on_disk)
    result: ValidationResult = outcome.value
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
    return outcome


@flow(name="version")
def version_flow(dataset: str, validation: ValidationResult | None = None) -> Outcome:
    """Stage flow: the validated store becomes a DVC dataset version in the registry."""
    return run_task(
        version_task.with_options(**io_retries()), dataset, validation, still_valid=version_still_current
    )
