"""Release stage flows: evaluate (metrics + gate verdict), package the models that passed, promote them."""

from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_link_artifact, create_table_artifact
from prefect.runtime import flow_run

from components.evaluation.release import gate_summary, kept_as_candidates, promote_candidate
from components.orchestration.cache import (
    Outcome,
    bento_still_verified,
    evaluate_inputs,
    gate_still_recorded,
    package_inputs,
    run_all,
    stage_cache,
)
from components.orchestration.outcomes import EvaluationOutcome, PackageOutcome
from components.orchestration.retries import io_retries
from components.orchestration.runners import worker_identity
from components.orchestration.summary import headline_metrics, metric_rows
from components.workspace import Workspace


@task(name="evaluate", cache_policy=stage_cache("evaluate", evaluate_inputs))
def evaluate_task(model_ref: str, flow_run_id: str | None) -> EvaluationOutcome:
    """Metrics with CIs, subgroups, external cohort, comparison with production, and the gate verdict."""
    from components.evaluation.stage import evaluate

    workspace = Workspace.current()
    result = evaluate(workspace, model_ref, flow_run_id=flow_run_id)
    return EvaluationOutcome(result, gate_summary(workspace, model_ref), worker_identity())


@flow(name="evaluate")
def evaluate_flow(models: dict[str, str], flow_run_id: str | None = None) -> dict[str, Outcome]:
    """Stage flow: evaluate each task model (in parallel on the task runner); the gate decides."""
    run_id = flow_run_id or flow_run.get_id()
    calls = [(ref, run_id) for ref in models.values()]
    outcomes = dict(zip(models, run_all(evaluate_task, calls, still_valid=gate_still_recorded), strict=True))
    rows = []
    for outcome in outcomes.values():
        evaluation: EvaluationOutcome = outcome.value
        rows += metric_rows(evaluation.model_ref, headline_metrics(evaluation.result))
        create_link_artifact(
            key=f"evaluation-report-{evaluation.model_ref.split('@')[0].lower()}",
            link=Path(evaluation.result.report_html).resolve().as_uri(),
            link_text=f"evaluation report of {evaluation.model_ref}",
            description=f"gate: {evaluation.gate.verdict if evaluation.gate else None}",
        )
    create_table_artifact(key="evaluation-metrics", table=rows, description="Test metrics of the task models")
    return outcomes


@task(name="package", cache_policy=stage_cache("package", package_inputs))
def package_task(model_ref: str, flow_run_id: str | None) -> PackageOutcome:
    """Build the Bento, export it to the artifact store and register it (refused unless the gate passed)."""
    from components.serving.package import package

    result = package(Workspace.current(), model_ref, flow_run_id=flow_run_id)
    return PackageOutcome(result, worker_identity())


@flow(name="package")
def package_flow(models: dict[str, str], flow_run_id: str | None = None) -> dict[str, Outcome]:
    """Stage flow: a Bento per task model (only models whose gate passed are given here)."""
    run_id = flow_run_id or flow_run.get_id()
    calls = [(ref, run_id) for ref in models.values()]
    retrying = package_task.with_options(**io_retries())
    outcomes = dict(zip(models, run_all(retrying, calls, still_valid=bento_still_verified), strict=True))
    for outcome in outcomes.values():
        bento = outcome.value.result
        create_link_artifact(
            key=f"bento-{bento.task.lower()}",
            link=bento.uri if "://" in bento.uri else Path(bento.uri).resolve().as_uri(),
            link_text=f"Bento {bento.tag}",
            description=f"sha256 {bento.sha256}",
        )
    return outcomes


@task(name="promote")
def promote_task(model_ref: str, stage: str, flow_run_id: str | None) -> str:
    """Move a model whose gate passed from candidate to ``stage``; a stage a person set meanwhile stays."""
    return promote_candidate(Workspace.current(), model_ref, stage, flow_run_id)


@flow(name="promote")
def promote_flow(models: dict[str, str], flow_run_id: str | None = None) -> dict[str, str]:
    """Stage flow: promote packaged models whose gate passed (to ``orchestration.promote_to``)."""
    orchestration = Workspace.current().params.orchestration
    if orchestration.promote_to == "none":
        return kept_as_candidates(models)
    run_id = flow_run_id or flow_run.get_id()
    return {task: promote_task(ref, orchestration.promote_to, run_id) for task, ref in models.items()}
