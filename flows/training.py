"""Training stage flows: pretrain (or reuse / resume the foundation model) and fine-tune each task."""

from prefect import flow, task
from prefect.artifacts import create_table_artifact
from prefect.runtime import flow_run

from components.orchestration.cache import (
    Outcome,
    finetune_inputs,
    model_still_registered,
    pretrain_inputs,
    run_all,
    run_task,
    stage_cache,
)
from components.orchestration.outcomes import FoundationOutcome, TaskModelOutcome
from components.orchestration.runners import worker_identity
from components.orchestration.summary import foundation_from_registry, metric_rows
from components.runs.foundation import FoundationDecision, decide_foundation
from components.workspace import Workspace


@task(name="foundation-decision")
def foundation_decision_task(dataset: str, dataset_version: str) -> FoundationDecision:
    """Pretrain, resume an interrupted pretraining, or reuse a foundation model (params.yaml policy)."""
    return decide_foundation(Workspace.current(), dataset, dataset_version)


@task(name="pretrain", cache_policy=stage_cache("pretrain", pretrain_inputs))
def pretrain_task(
    dataset: str, dataset_version: str, resume: bool, flow_run_id: str | None
) -> FoundationOutcome:
    """Signal-language pretraining with the compute settings of params.yaml (DDP when several devices)."""
    from components.training.launch import pretrain_with

    result = pretrain_with(Workspace.current(), dataset, resume=resume, flow_run_id=flow_run_id)
    return FoundationOutcome.from_pretrain(result, worker_identity())


@flow(name="pretrain")
def pretrain_flow(dataset: str, dataset_version: str, flow_run_id: str | None = None) -> Outcome:
    """Stage flow: the foundation model — pretrained, resumed after a crash, or reused per the policy."""
    decision = foundation_decision_task(dataset, dataset_version)
    if decision.action == "reuse":
        assert decision.model_ref is not None
        outcome = Outcome(foundation_from_registry(Workspace.current(), decision.model_ref), cached=True)
    else:
        outcome = run_task(
            pretrain_task,
            dataset,
            dataset_version,
            decision.action == "resume",
            flow_run_id or flow_run.get_id(),
            still_valid=model_still_registered,
        )
    foundation: FoundationOutcome = outcome.value.decided(decision)
    create_table_artifact(
        key="pretrain-metrics",
        table=metric_rows(foundation.model_ref, foundation.metrics),
        description=f"Foundation model {foundation.model_ref} ({decision.action}: {decision.reason})",
    )
    return Outcome(foundation, outcome.cached)


@task(name="finetune", cache_policy=stage_cache("finetune", finetune_inputs))
def finetune_task(
    task: str, dataset: str, dataset_version: str, foundation_ref: str, flow_run_id: str | None
) -> TaskModelOutcome:
    """Fine-tune one task from the foundation model; resumes the task's interrupted run, if any."""
    from components.finetune.stage import FinetuneRequest, finetune
    from components.runs.lifecycle import RunOptions
    from components.runs.resume import finetune_decision

    workspace = Workspace.current()
    decision = finetune_decision(workspace, task, dataset, dataset_version, foundation_ref)
    options = RunOptions(
        resume=decision.action == "resume",
        flow_run_id=flow_run_id,
        accelerator=workspace.params.compute.accelerator,
    )
    result = finetune(workspace, FinetuneRequest(task, dataset, foundation_ref), options)
    return TaskModelOutcome(result, decision.reason, worker_identity())


@flow(name="finetune")
def finetune_flow(
    tasks: list[str], dataset: str, dataset_version: str, foundation_ref: str, flow_run_id: str | None = None
) -> dict[str, Outcome]:
    """Stage flow: one task model per configured task, fine-tuned in parallel on the task runner."""
    run_id = flow_run_id or flow_run.get_id()
    calls = [(t, dataset, dataset_version, foundation_ref, run_id) for t in tasks]
    outcomes = dict(
        zip(tasks, run_all(finetune_task, calls, still_valid=model_still_registered), strict=True)
    )
    create_table_artifact(
        key="finetune-metrics",
        table=[
            row
            for outcome in outcomes.values()
            for row in metric_rows(outcome.value.model_ref, outcome.value.result.val_metrics, split="val")
        ],
        description="Task models and their validation metrics",
    )
    return outcomes
