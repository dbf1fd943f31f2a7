"""The learning-rate schedule pretraining and fine-tuning share: linear warm-up, then cosine decay to 0."""

from __future__ import annotations

import math
from typing import Any

import torch


def warmup_cosine(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int) -> dict[str, Any]:
    """Lightning's ``configure_optimizers`` answer for ``optimizer`` stepped per batch: warm-up over
    ``warmup_steps`` (at most half the run), cosine decay over the rest of ``total_steps``."""
    total = max(1, total_steps)
    warmup = min(warmup_steps, total // 2)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
