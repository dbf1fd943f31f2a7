"""Production flows: ``predict`` (batch inference over a drop), ``monitor`` (drift of the production model's
logged window; a breach can start ``retrain``) and ``shadow`` (a candidate against production).

Thin like the other flows: each task calls one function of ``components/``; the flows add artifacts and,
for ``monitor``, the retraining the policy asks for.
"""

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact

from components.inference.batch import BatchRequest, BatchResult, predict_drop
from components.monitoring.shadow import ShadowOutcome, ShadowRequest, shadow
from components.monitoring.stage import MonitorOutcome, MonitorRequest, monitor, newest_drop
from components.workspace import Workspace


@task(name="predict")
def predict_task(request: BatchRequest) -> BatchResult:
    """Score a drop with a registered task model (Parquet predictions, quarantine, prediction log)."""
    return predict_drop(Workspace.current(), request)


@flow(name="predict")
def predict_flow(drop: str, model: str, out: str | None = None) -> BatchResult:
    """Batch inference: ``ecgops predict DROP --model TASK@STAGE`` as a Prefect flow."""
    result = predict_task(BatchRequest(drop=Path(drop), model=model, out=out))
    create_markdown_artifact(
        key="batch-predictions",
        markdown=f"{result.n_predicted} records scored by {result.model_ref} "
        f"({result.records_per_s:.0f}/s), {result.n_quarantined} quarantined: `{result.out}`",
    )
    return result


@task(name="monitor")
def monitor_task(request: MonitorRequest) -> MonitorOutcome:
    """Compare the production model's logged window with its reference under the policy."""
    return monitor(Workspace.current(), request)


@flow(name="monitor")
def monitor_flow(
    task_name: str, policy: str = "default", drops: str | None = None, stage: str = "production"
) -> MonitorOutcome:
    """Monitor the model of a task in ``stage``; on a breach whose policy says ``retrain``, run
    ``retrain`` on the newest drop under ``drops``."""
    outcome = monitor_task(MonitorRequest(task=task_name, policy=policy, stage=stage))
    create_link_artifact(
        key=f"monitoring-{task_name.lower()}",
        link=Path(outcome.report).resolve().as_uri(),
        link_text=f"monitoring report of {outcome.model_ref}",
        description=f"{outcome.status}: {'; '.join(outcome.reasons) or 'no drift'}",
    )
    if outcome.retrain:
        logger = get_run_logger()
        if drops is None:
            logger.warning("drift breach: the policy asks for retraining but no drops folder was given")
        else:
            from flows.retrain import retrain

            drop = newest_drop(Path(drops))
            logger.warning("drift breach: retraining on %s", drop)
            retrain(str(drop))
    return outcome


@task(name="shadow")
def shadow_task(request: ShadowRequest) -> ShadowOutcome:
    """Replay the records through the candidate and the production model; record the shadow report."""
    return shadow(Workspace.current(), request)


@flow(name="shadow")
def shadow_flow(task_name: str, candidate: str, drop: str | None = None, days: float = 7.0) -> ShadowOutcome:
    """Replay a drop or the logged window through a candidate and the production model."""
    request = ShadowRequest(task=task_name, candidate=candidate, drop=Path(drop) if drop else None, days=days)
    return shadow_task(request)
