"""The pretraining LightningModule: CLIP between ECG and report, plus optional ECG–ECG and masked losses."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
import torch.nn.functional as F

from components.models.config import FoundationConfig
from components.models.foundation import SignalLanguageModel
from components.models.text import build_text_encoder
from components.training.augment import augment
from components.training.objectives import clip_loss, masked_reconstruction_loss, nt_xent, patch_time_mask
from components.training.params import PretrainParams
from components.training.schedule import warmup_cosine

Batch = dict[str, torch.Tensor]


class PretrainModule(L.LightningModule):
    """Wraps :class:`SignalLanguageModel`; its weights are what the pretrain stage publishes.

    Losses (weights in ``objectives``): ``clip`` always; ``ecg_ecg``, ``masked_reconstruction`` and
    ``text_text`` (SimCSE on the batch's ``extra_tokens``, training-patient reports) when weighted.

    Every training step draws its randomness (augmentations, masking, dropout) from a generator seeded
    with ``(seed, global step, rank)``: a run resumed from a checkpoint continues exactly as an
    uninterrupted one would.
    """

    def __init__(self, config: dict[str, Any], params: dict[str, Any]):
        super().__init__()
        self.save_hyperparameters()
        self.cfg = FoundationConfig.model_validate(config)
        self.params = PretrainParams.model_validate(params)
        self.model = SignalLanguageModel(self.cfg, text_encoder=build_text_encoder(self.cfg.text))

    def _step_seed(self) -> int:
        return (self.params.seed * 1_000_003 + self.global_step * 7919 + self.global_rank) % 2**63

    def _gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """Concatenate a tensor across DDP ranks (gradients flow back to the local part)."""
        if not (torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1):
            return tensor
        gathered = self.all_gather(tensor, sync_grads=True)
        assert isinstance(gathered, torch.Tensor)
        return gathered.flatten(0, 1)

    def losses(self, batch: Batch, gen: torch.Generator | None) -> dict[str, torch.Tensor]:
        """The weighted losses of a batch; ``gen`` None means no augmentation or masking (validation)."""
        p = self.params
        signal, lead_mask = batch["signal"], batch["lead_mask"]
        if gen is not None:
            view, view_mask = augment(signal, lead_mask, p.augment, self.cfg.fs, gen)
        else:
            view, view_mask = signal, lead_mask
        model = self.model
        losses: dict[str, torch.Tensor] = {}
        if model.reconstruct is not None and gen is not None:
            hidden = patch_time_mask(
                len(view), view.shape[-1], model.ecg.stride, p.objectives.mask_ratio, gen, view.device
            )
            features, pooled = model.ecg.encode(view * ~hidden, view_mask)
            estimate = model.reconstruct_signal(features, view.shape[-1])
            losses["masked_reconstruction"] = masked_reconstruction_loss(estimate, view, hidden, view_mask)
        else:
            pooled = model.ecg(view, view_mask)
        ecg = F.normalize(model.ecg_proj(pooled), dim=-1)
        if "text_features" in batch:  # a frozen report encoder's cached embeddings
            text = F.normalize(model.text_proj(batch["text_features"]), dim=-1)
        else:
            text = model.embed_text(batch["tokens"])
        losses["clip"] = clip_loss(
            self._gather(ecg), self._gather(text), model.logit_scale, self._gather(batch["report_id"])
        )
        if model.view_proj is not None and gen is not None:
            second, second_mask = augment(signal, lead_mask, p.augment, self.cfg.fs, gen)
            z1 = model.view_proj(pooled)
            z2 = model.view_proj(model.ecg(second, second_mask))
            losses["ecg_ecg"] = nt_xent(self._gather(z1), self._gather(z2), p.objectives.ecg_ecg_temperature)
        if p.objectives.text_text > 0 and gen is not None and "extra_tokens" in batch:
            # SimCSE: two passes of the same reports differ only by dropout; each is the other's positive
            extra = batch["extra_tokens"]
            losses["text_text"] = nt_xent(
                model.embed_text(extra), model.embed_text(extra), p.objectives.text_text_temperature
            )
        weights = p.objectives.model_dump()
        losses["loss"] = torch.stack([weights[name] * value for name, value in losses.items()]).sum()
        return losses

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        seed = self._step_seed()
        torch.manual_seed(seed)
        gen = torch.Generator(device=batch["signal"].device).manual_seed(seed)
        losses = self.losses(batch, gen)
        size = len(batch["signal"])
        for name, value in losses.items():
            self.log(f"train/{name}", value, on_step=True, on_epoch=True, batch_size=size, sync_dist=True)
        self.log("train/temperature", self.model.temperature, on_step=True, on_epoch=False, batch_size=size)
        return losses["loss"]

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        clip = self.losses(batch, None)["clip"]
        self.log("val/clip", clip, on_epoch=True, batch_size=len(batch["signal"]), sync_dist=True)

    def configure_optimizers(self) -> Any:
        p = self.params
        text = self.model.text
        pretrained = [q for q in text.parameters() if q.requires_grad] if self.cfg.text.kind == "hf" else []
        scaled = {id(q) for q in pretrained}
        groups = [{"params": [q for q in self.parameters() if id(q) not in scaled], "lr": p.lr}]
        if pretrained:  # a fine-tuned Hugging Face model learns gently, or it forgets what it knew
            groups.append({"params": pretrained, "lr": p.lr * p.text.lr_scale})
        optimizer = torch.optim.AdamW(groups, lr=p.lr, weight_decay=p.weight_decay)
        return warmup_cosine(optimizer, int(self.trainer.estimated_stepping_batches), p.warmup_steps)
