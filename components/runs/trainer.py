"""The one Lightning ``Trainer`` factory of pretraining and fine-tuning: precision, devices, strategy, a
CSV log per attempt, and the callbacks (checkpoints a resume continues from) each stage adds."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import lightning as L


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
    """A Trainer with a CSV log folder per attempt (``logs/version_N``), a new dataloader every epoch (the
    stages' samplers reshuffle per epoch), no sanity validation, and warnings for nondeterminism."""
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
