"""Prefect task caching keyed on what a stage's result depends on: inputs (dataset version, drop, model),
the stage's ``params.yaml`` section, and the stage's code version — never on run ids or timestamps.

A cached result is only used while what it points at still exists (``still_valid``); otherwise the task
runs again and overwrites the cache record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from prefect.cache_policies import CachePolicy
from prefect.context import TaskRunContext
from prefect.futures import PrefectFuture
from prefect.states import State
from prefect.tasks import Task

from components.config import Settings, get_settings
from components.orchestration import fingerprints as fp
from components.orchestration.outcomes import (
    EvaluationOutcome,
    FoundationOutcome,
    IngestOutcome,
    PackageOutcome,
    TaskModelOutcome,
    VersionOutcome,
)
from components.workspace import Workspace

if TYPE_CHECKING:
    from components.validation import ValidationResult

R = TypeVar("R")
KeyInputs = Callable[[Settings, dict[str, Any]], dict[str, Any]]


@dataclass
class StageCache(CachePolicy):
    """Cache key = stage + workspace + the stage's code version + what ``inputs`` extracts."""

    stage: str = ""
    inputs: KeyInputs | None = None

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        return self.key(get_settings(), inputs)

    def key(self, settings: Settings, inputs: dict[str, Any]) -> str:
        """The cache key of a task run with ``inputs`` in the workspace of ``settings``."""
        assert self.inputs is not None, "a StageCache needs an inputs function"
        return fp.digest(
            {
                "stage": self.stage,
                "code": fp.code_version(self.stage),
                **fp.workspace_identity(settings),
                **self.inputs(settings, inputs),
            }
        )


def params_section(settings: Settings, name: str) -> dict[str, Any]:
    """A section of the workspace's params.yaml as plain data (defaults filled in where modelled)."""
    return Workspace(settings).params.section(name)


def dataset_name(settings: Settings, dataset: str | None) -> str:
    return Workspace(settings).dataset(dataset)


def ingest_inputs(settings: Settings, inputs: dict[str, Any]) -> dict[str, Any]:
    """The drop's files and the ingest parameters. A cached ingest only counts while the store is still
    in the state that ingest left it in (see :func:`ingest_still_current`)."""
    return {
        "drop": fp.drop_fingerprint(Path(inputs["drop"])),
        "dataset": dataset_name(settings, inputs.get("dataset")),
        "params": params_section(settings, "ingest"),
    }


def ingest_still_current(ingest: IngestOutcome) -> bool:
    """True while the store is as the cached ingest left it, so every record of the drop is in it."""
    return bool(ingest.store_after) and ingest.store_after == fp.store_state(
        get_settings(), ingest.summary.dataset
    )


def report_still_on_disk(result: ValidationResult) -> bool:
    """A cached validation counts while its steward report and quarantine list are still there."""
    return result.summary_html.is_file() and result.quarantine_path.is_file()


def version_still_current(version: VersionOutcome) -> bool:
    """A cached dataset version counts while ``data.dvc`` still records it."""
    from components.io.versioning import current_version

    return current_version(Workspace.current()) == version.md5


def model_still_registered(result: FoundationOutcome | TaskModelOutcome) -> bool:
    """A cached training result counts while its model is registered and its folder is there."""
    from components.registry import NotFoundError

    if not result.model_ref:
        return False
    with Workspace.current().registry() as registry:
        try:
            registry.model(result.model_ref)
        except NotFoundError:
            return False
    return Path(result.model_dir).is_dir()


def gate_still_recorded(evaluation: EvaluationOutcome) -> bool:
    """A cached evaluation counts while the registry holds its model's gate decision."""
    from components.evaluation.release import gate_summary

    return gate_summary(Workspace.current(), evaluation.model_ref) is not None


def bento_still_verified(bento: PackageOutcome) -> bool:
    """A cached Bento counts while the artifact store holds it with its registered checksum."""
    from components.registry import NotFoundError

    with Workspace.current().registry() as registry:
        try:
            registry.verify_bento(bento.result.tag)
        except (NotFoundError, OSError):
            return False
    return True


def validate_inputs(settings: Settings, inputs: dict[str, Any]) -> dict[str, Any]:
    """The store's content, the validation policy and the steward decisions."""
    from components.validation import load_policy

    dataset = inputs["dataset"]
    return {
        "dataset": dataset,
        "store": fp.store_state(settings, dataset),
        "policy": load_policy().fingerprint,
        "decisions": fp.steward_decisions_fingerprint(settings, dataset),
    }


def version_inputs(settings: Settings, inputs: dict[str, Any]) -> dict[str, Any]:
    """Everything under ``data/`` and the validation run to record (``data.dvc`` is this task's output:
    a cached version counts while ``data.dvc`` still records it)."""
    validation = inputs.get("validation")
    return {
        "dataset": inputs["dataset"],
        "data": fp.data_state(settings),
        "validation_run": getattr(validation, "run_name", None),
        "remote": settings.resolved_dvc_remote_url,
    }


def training_exclusions(settings: Settings, dataset: str) -> str:
    """Digest of the records the latest validation keeps out of training."""
    from components.validation import validation_exclusions

    return fp.digest(sorted(validation_exclusions(Workspace(settings), dataset)))


def pretrain_inputs(settings: Settings, inputs: dict[str, Any]) -> dict[str, Any]:
    """The dataset version, the records excluded from it, and the pretraining parameters."""
    return {
        "dataset": inputs["dataset"],
        "dataset_version": inputs["dataset_version"],
        "excluded": training_exclusions(settings, inputs["dataset"]),
        "params": params_section(settings, "pretrain"),
    }


def model_identity(settings: Settings, model_ref: str) -> dict[str, str]:
    """A registered model as a key part: its reference and the sha256 of its artifact."""
    with Workspace(settings).registry() as registry:
        info = registry.model(model_ref)
    return {"ref": info.ref, "sha256": info.sha256}


def finetune_inputs(settings: Settings, inputs: dict[str, Any]) -> dict[str, Any]:
    """The task, the foundation model, the dataset version and its exclusions, the fine-tune parameters."""
    return {
        "task": inputs["task"],
        "foundation": model_identity(settings, inputs["foundation_ref"]),
        "dataset": inputs["dataset"],
        "dataset_version": inputs["dataset_version"],
        "excluded": training_exclusions(settings, inputs["dataset"]),
        "params": params_section(settings, "finetune"),
    }


def evaluate_inputs(settings: Settings, inputs: dict[str, Any]) -> dict[str, Any]:
    """The model, the evaluation parameters, the external cohorts' stores, and the production model the
    candidate is compared with (the gate depends on it)."""
    workspace = Workspace(settings)
    params = workspace.params.evaluate
    model = model_identity(settings, inputs["model_ref"])
    with workspace.registry() as registry:
        task = registry.model(model["ref"]).task
        production = registry.model_at_stage(task, "production") if task else None
    return {
        "model": model,
        "params": params.model_dump(mode="json"),
        "external": {name: fp.store_state(settings, name) for name in params.external},
        # the model the candidate is compared with; none when it is the production model itself
        "production": (
            model_identity(settings, production.ref)
            if production and production.ref != model["ref"]
            else None
        ),
    }


def package_inputs(settings: Settings, inputs: dict[str, Any]) -> dict[str, Any]:
    """The model that is packaged."""
    return {"model": model_identity(settings, inputs["model_ref"])}


def stage_cache(stage: str, inputs: KeyInputs) -> StageCache:
    return StageCache(stage=stage, inputs=inputs)


@dataclass(frozen=True)
class Outcome:
    """A task's result and whether it came from the cache."""

    value: Any
    cached: bool


def outcome_of(state: State[Any]) -> Outcome:
    """The result of a finished task run (raises its exception when it failed)."""
    return Outcome(state.result(), state.name == "Cached")


def run_task(task: Task[..., Any], *args: Any, still_valid: Callable[[Any], bool] | None = None) -> Outcome:
    """Run ``task`` on the flow's task runner (threads or Dask) and wait; a cached result that is no
    longer valid is recomputed (its cache record overwritten)."""
    [outcome] = run_all(task, [args], still_valid=still_valid)
    return outcome


def run_here(task: Task[..., Any], *args: Any, still_valid: Callable[[Any], bool] | None = None) -> Outcome:
    """Run ``task`` in this process (the flow's), not on the task runner: for a stage that submits its
    own shards to the task runner and writes their results itself. Caching as in :func:`run_task`."""
    outcome = outcome_of(cast("State[Any]", task(*args, return_state=True)))
    if outcome.cached and still_valid and not still_valid(outcome.value):
        refreshed = task.with_options(refresh_cache=True)(*args, return_state=True)
        outcome = outcome_of(cast("State[Any]", refreshed))
    return outcome


def run_all(
    task: Task[..., Any], calls: list[tuple[Any, ...]], *, still_valid: Callable[[Any], bool] | None = None
) -> list[Outcome]:
    """Submit ``task`` once per argument tuple to the flow's task runner (threads or Dask) and wait for
    all, in order; like :func:`run_task`, invalid cached results are recomputed."""
    futures: list[PrefectFuture[Any]] = [task.submit(*args) for args in calls]
    for future in futures:
        future.wait()
    outcomes = [outcome_of(future.state) for future in futures]
    stale = [
        i
        for i, outcome in enumerate(outcomes)
        if outcome.cached and still_valid and not still_valid(outcome.value)
    ]
    if stale:
        refreshed = run_all(task.with_options(refresh_cache=True), [calls[i] for i in stale])
        for i, outcome in zip(stale, refreshed, strict=True):
            outcomes[i] = outcome
    return outcomes
