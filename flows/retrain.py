"""``retrain``: the main job. A drop in; a gated, packaged, traceable model out.

drop → ingest → validate (a ``block`` ends the run Failed, nothing downstream runs) → DVC version →
pretrain (or resume / reuse the foundation model) → fine-tune each task in ``finetune.tasks`` → evaluate →
gate → package → promote to staging when the gate passes. One run per workspace at a time; every stage
is cached on its inputs, parameters and code, so a re-run with no new data reuses everything.
"""

import time
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from components.orchestration.outcomes import RetrainOutcome, TaskOutcome
from components.orchestration.runners import dask_cluster, task_runner
from components.orchestration.summary import not_promoted, publish
from components.runs.lock import workspace_lock
from components.workspace import Workspace
from flows.data import ingest_flow, validate_flow, version_flow
from flows.release import evaluate_flow, package_flow, promote_flow
from flows.training import finetune_flow, pretrain_flow


@flow(name="retrain")
def retrain(drop: str, dataset: str | None = None) -> RetrainOutcome:
    """The retraining flow on the hospital drop ``drop`` (into ``dataset``, default params.yaml's)."""
    started = time.perf_counter()
    workspace = Workspace.current()
    orchestration, compute = workspace.params.orchestration, workspace.params.compute
    tasks = workspace.params.finetune.tasks
    run_id = flow_run.get_id()
    logger = get_run_logger()

    def waiting(holder: dict[str, Any] | None) -> None:
        logger.warning("waiting for the workspace: another run holds it (%s)", holder or "unknown holder")

    owner = {"flow_run_id": run_id, "drop": drop}
    with (
        workspace_lock(
            workspace.settings, timeout_s=orchestration.lock_timeout_s, owner=owner, on_wait=waiting
        ),
        dask_cluster(compute) as address,
    ):
        runner = task_runner(address)
        ingest = ingest_flow.with_options(task_runner=runner)(drop, dataset)
        name = ingest.value.summary.dataset
        validation = validate_flow.with_options(task_runner=runner)(name)
        version = version_flow.with_options(task_runner=runner)(name, validation.value)
        md5 = version.value.md5
        foundation = pretrain_flow.with_options(task_runner=runner)(name, md5, run_id)
        models = finetune_flow.with_options(task_runner=runner)(
            tasks, name, md5, foundation.value.model_ref, run_id
        )
        refs = {task: str(outcome.value.model_ref) for task, outcome in models.items()}
        evaluations = evaluate_flow.with_options(task_runner=runner)(refs, run_id)
        passed = {task: refs[task] for task, ev in evaluations.items() if ev.value.passed}
        bentos = package_flow.with_options(task_runner=runner)(passed, run_id) if passed else {}
        promotions = promote_flow(passed, run_id) if passed else {}
    stages = {"ingest": ingest, "validate": validation, "version": version, "pretrain": foundation}
    for prefix, outcomes in (("finetune", models), ("evaluate", evaluations), ("package", bentos)):
        stages |= {f"{prefix}:{task}": outcome for task, outcome in outcomes.items()}
    outcome = RetrainOutcome(
        flow_run_id=run_id,
        dataset=name,
        ingest=ingest.value,
        validation=validation.value,
        version=version.value,
        foundation=foundation.value,
        tasks={
            task: TaskOutcome(
                finetune=models[task].value,
                evaluation=evaluations[task].value,
                package=bentos[task].value if task in bentos else None,
                promotion=promotions.get(task) or not_promoted(evaluations[task].value),
            )
            for task in tasks
        },
        cached={stage: result.cached for stage, result in stages.items()},
        registry=workspace.registry_url,
        elapsed_s=round(time.perf_counter() - started, 1),
    )
    publish(outcome)
    return outcome
