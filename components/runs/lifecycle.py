"""What every training run takes besides its job (:class:`RunOptions`), and the failure record of its
registry run (:func:`failure_recorded`).

A pretraining or fine-tuning run opens its registry run when it starts and finishes it when it registers
its model; a resume continues the same registry run, so the run outlives one ``with`` block of
:meth:`~components.registry.Registry.run` (which evaluate and package use). Both end an interrupted run
the same way: :meth:`~components.registry.Registry.fail_run`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from components.runs.folder import RunState
from components.workspace import Workspace

#: a stage's parameters (with ``max_epochs``)
Params = TypeVar("Params", bound=BaseModel)

if TYPE_CHECKING:
    from components.registry import Registry


@dataclass(frozen=True)
class RunOptions:
    """How a training run runs, apart from what it trains.

    ``resume``: continue the run's last checkpoint; ``register``: record the run and its model in the
    registry; ``flow_run_id``: the Prefect flow run recorded on the registry run; ``progress``: progress
    bars; ``max_epochs``: override the stage's epochs (a resume may extend a run); ``accelerator``,
    ``devices``, ``strategy``: Lightning's device settings.
    """

    resume: bool = False
    register: bool = True
    flow_run_id: str | None = None
    progress: bool = False
    max_epochs: int | None = None
    accelerator: str = "auto"
    devices: int | str = 1
    strategy: str = "auto"

    def epochs_of(self, params: Params) -> Params:
        """The stage's ``params`` with ``max_epochs`` overridden when these options override it."""
        return (
            params if self.max_epochs is None else params.model_copy(update={"max_epochs": self.max_epochs})
        )


@contextmanager
def failure_recorded(workspace: Workspace, registry_run_id: int | None) -> Iterator[None]:
    """Record an exception leaving the block on the registry run (when there is one), then re-raise it; a
    later resume opens a run that names the failed one."""
    try:
        yield
    except BaseException as exc:
        if registry_run_id is not None:
            with workspace.registry() as registry:
                registry.fail_run(registry_run_id, exc)
        raise


def registering_run(
    registry: Registry, kind: str, state: RunState, provenance: dict[str, Any] | None = None
) -> int:
    """The registry run a finished training run registers its model under: its own while it is running,
    else (it was marked failed, then resumed) a new run that names it in ``resumes_run`` and records the
    run's parameters with its ``provenance`` (what the first run recorded beside them)."""
    run_id = state.registry_run_id
    if run_id is None:
        raise ValueError("a run without a registry run registers nothing")
    if registry.get_run(run_id).status == "running":
        return run_id
    return registry.start_run(
        kind,
        parameters={"resumes_run": run_id, **state.params, **(provenance or {})},
        prefect_flow_run_id=state.flow_run_id,
    )


def registered_version(workspace: Workspace, registry: Registry) -> str | None:
    """The dataset version ``data.dvc`` records, when the registry knows it (None otherwise)."""
    from components.io.versioning import current_version
    from components.registry import NotFoundError

    md5 = current_version(workspace)
    if md5 is None:
        return None
    try:
        return registry.find_dataset_version(md5).dvc_md5
    except NotFoundError:
        return None
