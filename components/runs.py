"""What every training run shares, whatever its stage: its folder (:class:`RunDir`: ``run.json``, the last
checkpoint, the epoch a resume continues from), the Lightning ``Trainer`` (precision, devices, strategy,
CSV logs per attempt, checkpoints for resume) and marking a registry run failed when the stage ends on
an error. The pretrain and finetune stages build their runs from these, and the orchestration's resume
decisions read the :class:`RunDir`, not the stages' files.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from components.workspace import Workspace

if TYPE_CHECKING:
    import lightning as L


@dataclass(frozen=True)
class RunDir:
    """The folder of one training run: ``run.json`` (what the run is: data, parameters, registry run) and
    ``checkpoints/last.ckpt`` (where a resume continues)."""

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

    def load(self) -> dict[str, Any]:
        """The run's ``run.json``."""
        state: dict[str, Any] = json.loads(self.run_file.read_text())
        return state

    def save(self, state: dict[str, Any]) -> None:
        """Write ``run.json`` whole or not at all (a kill mid-write leaves the previous one)."""
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.run_file.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(state, indent=2))
        os.replace(tmp, self.run_file)

    def resumed_epoch(self) -> int:
        """The epoch of the last checkpoint, which a resume continues after."""
        import torch

        return int(torch.load(self.last_checkpoint, map_location="cpu", weights_only=False)["epoch"])


@dataclass(frozen=True)
class TrainerSpec:
    """How one training run trains: where it writes, for how long, on what, and which checkpoints it keeps
    (Lightning callbacks: a ``ModelCheckpoint`` with ``save_last`` is what a resume continues from)."""

    run_dir: Path
    max_epochs: int
    precision: str = "auto"  # the params.yaml setting; see lightning_precision
    accelerator: str = "auto"
    devices: int | str = 1
    strategy: str = "auto"
    callbacks: tuple[Any, ...] = ()
    progress: bool = False
    log_every_n_steps: int = 10
    options: dict[str, Any] = field(default_factory=dict)  # other Trainer arguments, as Lightning names them


def build_trainer(spec: TrainerSpec) -> L.Trainer:
    """The one Trainer factory: a CSV log folder per attempt (``logs/version_N``), a new dataloader every
    epoch (the stages' samplers reshuffle per epoch), no sanity validation, warnings for nondeterminism."""
    import lightning as L
    from lightning.pytorch.loggers import CSVLogger

    return L.Trainer(
        max_epochs=spec.max_epochs,
        accelerator=spec.accelerator,
        devices=spec.devices,
        strategy=spec.strategy,
        precision=lightning_precision(spec.precision),  # type: ignore[arg-type]
        deterministic="warn",
        logger=CSVLogger(spec.run_dir, name="logs", flush_logs_every_n_steps=1),
        callbacks=list(spec.callbacks),
        reload_dataloaders_every_n_epochs=1,
        num_sanity_val_steps=0,
        log_every_n_steps=spec.log_every_n_steps,
        enable_progress_bar=spec.progress,
        enable_model_summary=spec.progress,
        default_root_dir=spec.run_dir,
        **spec.options,
    )


def lightning_precision(setting: str) -> str:
    """The Trainer's ``precision`` for a params.yaml setting: ``auto`` is bf16 where the GPU supports it,
    else full precision; ``32`` is Lightning's ``32-true``."""
    import torch

    if setting != "auto":
        return setting if setting != "32" else "32-true"
    return "bf16-mixed" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "32-true"


def mark_failed(workspace: Workspace, run_id: int, exc: BaseException) -> None:
    """Record ``exc`` on a registry run still running (a later resume opens a run that names this one)."""
    with workspace.registry() as registry:
        if registry.get_run(run_id).status == "running":
            registry.finish_run(run_id, status="failed", error=f"{type(exc).__name__}: {exc}")
