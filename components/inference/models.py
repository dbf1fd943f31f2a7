"""Which registered task model a batch scores with: ``TASK@STAGE`` or a model ``name@version``."""

from __future__ import annotations

from dataclasses import dataclass

from components.inference.errors import InferenceError
from components.models.task_model import TaskModel, load_task_model
from components.registry import ModelInfo, Registry
from components.registry.models import STAGES


@dataclass(frozen=True)
class DeployedModel:
    """A task model loaded from its verified artifact, with what its predictions are recorded under."""

    info: ModelInfo
    model: TaskModel
    bento: str  # the newest Bento of the model ("" when it was never packaged)

    @property
    def ref(self) -> str:
        return self.info.ref

    @property
    def dataset_version(self) -> str:
        return self.info.dataset_version_md5 or ""


def model_info(registry: Registry, target: str) -> ModelInfo:
    """``TASK@STAGE`` (the task's model in that stage) or a model reference; a task model either way."""
    task, _, stage = target.partition("@")
    if stage in STAGES:
        found = registry.model_at_stage(task, stage)
        if found is None:
            raise InferenceError(f"task {task!r} has no model in {stage}")
        info = found
    else:
        info = registry.model(target)
    if info.kind != "task" or info.task is None:
        raise InferenceError(f"{info.ref} is a {info.kind} model; batch inference needs a task model")
    return info


def load_deployed(registry: Registry, target: str) -> DeployedModel:
    """The task model ``target`` names, loaded from its artifact after checking its sha256."""
    info = model_info(registry, target)
    bentos = registry.bento_page(model=info.id, limit=1)
    model = load_task_model(registry.verify_artifact(info.ref))
    return DeployedModel(info=info, model=model, bento=bentos[0].tag if bentos else "")
