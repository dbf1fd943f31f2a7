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

from components.orchestration.runners import dask_cluster, task_runner
from components.orchestration.summary import gate_passed, not_promoted, publish
from components.runs.lock import workspace_lock
from components.workspace import Workspace
from flows.data import ingest_flow, validate_flow, version_flow
from flows.release import evaluate_flow, package_flow, promote_flow
from flows.training import finetune_flow, pretrain_flow


@flow(name="retrain")
def retrain(drop: str, dataset: str | None = None) -> dict[str, Any]:
    """The retraining flow on the hospital drop ``drop`` (into ``dataset``, default params.yaml's)."""
    started = time.perf_counter()
    workspace = Workspace.current()
    settings = workspace.settings
    orchestration, compute = workspace.params.orchestration, workspace.params.compute
    tasks = workspace.params.finetune.tasks
    run_id = flow_run.get_id()
    logger = get_run_logger()

    def waiting(holder: dict[str, Any] | None) -> None:
        logger.warning("waiting for the workspace: another run holds it (%s)", holder or "unknown holder")

    owner = {"flow_run_id": run_id, "drop": drop}
    with (
        workspace_lock(settings, timeout_s=orchestration.lock_timeout_s, owner=owner, on_wait=waiting),
        dask_cluster(compute) as address,
    ):
        ingest = ingest_flow.with_options(task_runner=task_runner(address))(drop, dataset)
        name = ingest.value["dataset"]
        validation = validate_flow.with_options(task_runner=task_runner(address))(name)
        version = version_flow.with_options(task_runner=task_runner(address))(name, validation.value)
        md5 = version.value["md5"]
        foundation = pretrain_flow.with_options(task_runner=task_runner(address))(name, md5, run_id)
        models = finetune_flow.with_options(task_runner=task_runner(address))(
            tasks, name, md5, foundation.value["model_ref"], run_id
        )
        refs = {task: outcome.value["model_ref"] for task, outcome in models.items()}
        evaluations = evaluate_flow.with_options(task_runner=task_runner(address))(refs, run_id)
        passed = {task: refs[task] for task, ev in evaluations.items() if gate_passed(ev.value)}
        bentos = package_flow.with_options(task_runner=task_runner(address))(passed, run_id) if passed else {}
        promotions = promote_flow(passed, run_id) if passed else {}
    cached = {
        "ingest": ingest.cached,
        "validate": validation.cached,
        "version": version.cached,
        "pretrain": foundation.cached,
        **{f"finetune:{task}": outcome.cached for task, outcome in models.items()},
        **{f"evaluate:{task}": outcome.cached for task, outcome in evaluations.items()},
        **{f"package:{task}": outcome.cached for task, outcome in bentos.items()},
    }
    outcome: dict[str, Any] = {
        "flow_run_id": run_id,
        "dataset": name,
        "ingest": ingest.value,
        "validation": validation.value.to_dict(),
        "version": version.value,
        "foundation": foundation.value,
        "tasks": {
            task: {
                "finetune": models[task].value,
                "evaluation": evaluations[task].value,
                "package": bentos[task].value if task in bentos else None,
                "promotion": promotions.get(task) or not_promoted(evaluations[task].value),
            }
            for task in tasks
        },
        "cached": cached,
        "registry": settings.resolved_registry_url,
        "elapsed_s": round(time.perf_counter() - started, 1),
    }
    publish(outcome)
    return outcome
