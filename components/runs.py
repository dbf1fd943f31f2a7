"""What every training run shares, whatever its stage: Lightning's precision setting and marking a
registry run failed when the stage ends on an error.

The pretrain and finetune stages both use these; a later ``RunDir`` / ``RunState`` goes here too.
"""

from __future__ import annotations

from typing import Literal

from components.workspace import Workspace

PrecisionSetting = Literal["auto", "32", "16-mixed", "bf16-mixed"]


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
