"""A training run's folder: ``run.json`` (what the run is, as a typed :class:`RunState`), the last
checkpoint and the epoch a resume continues after. The stages write it; the resume and foundation policies
read it, and nothing else parses ``run.json``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict


class RunState(BaseModel):
    """What every training run records in ``run.json``: its data, its parameters (the stage's params.yaml
    section as run) and its registry run."""

    model_config = ConfigDict(extra="forbid")

    dataset: str
    dataset_version: str | None = None
    params: dict[str, Any]
    registry_run_id: int | None = None
    flow_run_id: str | None = None


class PretrainRunState(RunState):
    """A pretraining run: also the manifest it started on (a resume must see the same records)."""

    manifest_sha256: str


class FinetuneRunState(RunState):
    """A fine-tuning run: the task as it was, the model configuration and the foundation it starts from."""

    task: str
    task_spec: dict[str, Any]
    mode: str
    label_fraction: float
    config: dict[str, Any]
    foundation: str | None
    foundation_path: str | None
    architecture_from: str
    validation_run_id: int | None = None
    train_records_sha256: str | None = None  # the training records (with the label fraction) of the run


State = TypeVar("State", bound=RunState)


@dataclass(frozen=True)
class RunDir:
    """The folder of one training run: ``run.json`` and ``checkpoints/last.ckpt`` (where a resume
    continues)."""

    path: Path

    @property
    def run_file(self) -> Path:
        return self.path / "run.json"

    @property
    def last_checkpoint(self) -> Path:
        return self.path / "checkpoints" / "last.ckpt"

    def exists(self) -> bool:
        """True when a run was started here (its ``run.json`` was written)."""
        return self.run_file.is_file()

    def has_checkpoint(self) -> bool:
        return self.last_checkpoint.is_file()

    def load(self, state_type: type[State]) -> State:
        """The run's ``run.json`` as ``state_type``."""
        return state_type.model_validate_json(self.run_file.read_text())

    def save(self, state: RunState) -> None:
        """Write ``run.json`` whole or not at all (a kill mid-write leaves the previous one)."""
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.run_file.with_suffix(".json.tmp")
        tmp.write_text(state.model_dump_json(indent=2))
        os.replace(tmp, self.run_file)

    def resumed_epoch(self) -> int:
        """The epoch of the last checkpoint, which a resume continues after."""
        import torch

        return int(torch.load(self.last_checkpoint, map_location="cpu", weights_only=False)["epoch"])
