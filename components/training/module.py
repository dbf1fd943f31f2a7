"""The pretraining LightningModule: the weighted objectives of the run's recipe (:mod:`.losses`)."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from components.models.config import FoundationConfig
from components.models.foundation import SignalLanguageModel
from components.models.text import build_text_encoder
from components.training.losses import Step, step_losses
from components.training.params import PretrainParams
from components.training.schedule import warmup_cosine

Batch = dict[str, torch.Tensor]


class PretrainModule(L.LightningModule):
    """Wraps :class:`SignalLanguageModel`; its weights are what the pretrain stage publishes.

    The losses are the objectives ``params.objectives`` weights (a recipe's choice), summed.

    Every training step draws its randomness (augmentations, masking, dropout) from a generator seeded
    with ``(seed, global step, rank)``: a run resumed from a checkpoint continues exactly as an
    uninterrupted one would. Validation draws from a generator seeded with the batch index, so every
    epoch's validation loss is measured on the same views.
    """

    def __init__(self, config: dict[str, Any], params: dict[str, Any]):
        super().__init__()
        self.save_hyperparameters()
        self.cfg = FoundationConfig.model_validate(config)
        self.params = PretrainParams.model_validate(params)
        text = build_text_encoder(self.cfg.text) if self.cfg.text is not None else None
        self.model = SignalLanguageModel(self.cfg, text_encoder=text)

    def _step_seed(self) -> int:
        return (self.params.seed * 1_000_003 + self.global_step * 7919 + self.global_rank) % 2**63

    def _gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """Concatenate a tensor across DDP ranks (gradients flow back to the local part)."""
        if not (torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1):
            return tensor
        gathered = self.all_gather(tensor, sync_grads=True)
        assert isinstance(gathered, torch.Tensor)
        return gathered.flatten(0, 1)

    def losses(self, batch: Batch, gen: torch.Generator, *, training: bool = True) -> dict[str, torch.Tensor]:
        """The batch's loss of each weighted objective and their weighted sum (``loss``)."""
        step = Step(self.model, self.params, batch, gen, self.cfg.fs, self._gather)
        return step_losses(step, training=training)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        seed = self._step_seed()
        torch.manual_seed(seed)
        gen = torch.Generator(device=batch["signal"].device).manual_seed(seed)
        losses = self.losses(batch, gen)
        size = len(batch["signal"])
        for name, value in losses.items():
            self.log(f"train/{name}", value, on_step=True, on_epoch=True, batch_size=size, sync_dist=True)
        if self.model.has_text_space:
            self.log(
                "train/temperature", self.model.temperature, on_step=True, on_epoch=False, batch_size=size
            )
        return losses["loss"]

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        seed = (self.params.seed * 1_000_003 + batch_idx) % 2**63
        gen = torch.Generator(device=batch["signal"].device).manual_seed(seed)
        size = len(batch["signal"])
        for name, value in self.losses(batch, gen, training=False).items():
            self.log(f"val/{name}", value, on_epoch=True, batch_size=size, sync_dist=True)

    def configure_optimizers(self) -> Any:
        p = self.params
        text = self.cfg.text
        pretrained = (
            [q for q in self.model.text.parameters() if q.requires_grad]
            if text is not None and text.kind == "hf"
            else []
        )
        scaled = {id(q) for q in pretrained}
        groups = [{"params": [q for q in self.parameters() if id(q) not in scaled], "lr": p.lr}]
        if pretrained:  # a fine-tuned Hugging Face model learns gently, or it forgets what it knew
            groups.append({"params": pretrained, "lr": p.lr * p.text.lr_scale})
        optimizer = torch.optim.AdamW(groups, lr=p.lr, weight_decay=p.weight_decay)
        return warmup_cosine(optimizer, int(self.trainer.estimated_stepping_batches), p.warmup_steps)
