"""The fine-tuning LightningModule: a :class:`TaskModel` trained with multi-label binary cross-entropy.

Modes: ``linear_probe`` (encoder frozen, in eval mode, only the head learns), ``finetune`` (the encoder
learns at ``lr × encoder_lr_factor``, the head at ``lr``), ``scratch`` (random encoder, all at ``lr``).
Each step reseeds from ``(seed, global step)`` like pretraining, so a resumed run is exact.
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch

from components.finetune.params import FinetuneParams
from components.metrics.classification import macro_auroc
from components.models.task_model import TaskModel, TaskModelConfig
from components.training.augment import augment
from components.training.schedule import warmup_cosine

Batch = dict[str, torch.Tensor]


class FinetuneModule(L.LightningModule):
    """Wraps :class:`TaskModel`; its weights (best validation epoch) are what the stage publishes."""

    def __init__(self, config: dict[str, Any], params: dict[str, Any]):
        super().__init__()
        self.save_hyperparameters()
        self.cfg = TaskModelConfig.model_validate(config)
        self.params = FinetuneParams.model_validate(params)
        self.model = TaskModel(self.cfg)
        if self.cfg.mode == "linear_probe":
            self.model.encoder.requires_grad_(False)
            self.model.encoder.eval()
        self._val_proba: list[torch.Tensor] = []
        self._val_targets: list[torch.Tensor] = []
        self._val_loss: list[torch.Tensor] = []

    def train(self, mode: bool = True) -> FinetuneModule:
        """A linear probe's encoder stays in eval mode (frozen batch-norm statistics, no dropout)."""
        super().train(mode)
        if self.cfg.mode == "linear_probe":
            self.model.encoder.eval()
        return self

    def on_train_batch_start(self, batch: Batch, batch_idx: int) -> None:
        """Lightning restores each submodule's recorded mode around validation; re-freeze every step."""
        if self.cfg.mode == "linear_probe":
            self.model.encoder.eval()

    def _step_seed(self) -> int:
        return (self.params.seed * 1_000_003 + self.global_step * 7919 + self.global_rank) % 2**63

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        seed = self._step_seed()
        torch.manual_seed(seed)
        gen = torch.Generator(device=batch["signal"].device).manual_seed(seed)
        mask = self.model.effective_mask(batch["lead_mask"])
        signal, mask, start = augment(batch["signal"], mask, self.params.augment, self.cfg.fs, gen)
        logits = self.model(signal, mask, start)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), batch["target"])
        self.log("train/loss", loss, on_step=True, on_epoch=True, batch_size=len(signal))
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        logits = self.model(batch["signal"], batch["lead_mask"]).float()
        self._val_loss.append(
            torch.nn.functional.binary_cross_entropy_with_logits(logits, batch["target"], reduction="sum")
        )
        self._val_proba.append(torch.sigmoid(logits).cpu())
        self._val_targets.append(batch["target"].cpu())

    def on_validation_epoch_end(self) -> None:
        if not self._val_proba:
            return
        proba = torch.cat(self._val_proba).numpy()
        targets = torch.cat(self._val_targets).numpy()
        loss = float(torch.stack(self._val_loss).sum()) / targets.size
        auc = macro_auroc(targets, proba)
        self._val_proba, self._val_targets, self._val_loss = [], [], []
        self.log("val/loss", loss)
        self.log("val/macro_auroc", auc if math.isfinite(auc) else float("nan"))
        # checkpoint selection: macro AUROC, or (when no label has both classes) the negative loss
        self.log("val/selection", auc if math.isfinite(auc) else -loss)

    def configure_optimizers(self) -> Any:
        p = self.params
        head = list(self.model.head.parameters())
        if self.cfg.mode == "linear_probe":
            groups = [{"params": head, "lr": p.lr}]
        elif self.cfg.mode == "finetune":
            groups = [
                {"params": list(self.model.encoder.parameters()), "lr": p.lr * p.encoder_lr_factor},
                {"params": head, "lr": p.lr},
            ]
        else:
            groups = [{"params": list(self.model.parameters()), "lr": p.lr}]
        optimizer = torch.optim.AdamW(groups, lr=p.lr, weight_decay=p.weight_decay)
        return warmup_cosine(optimizer, int(self.trainer.estimated_stepping_batches), p.warmup_steps)
