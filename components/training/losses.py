"""Each pretraining objective as a function of one training step: a recipe weights the ones its paper uses.

A :class:`Step` holds the batch, the model, the parameters and the step's random generator; every
objective draws its augmentations and masks from that generator, so a step's losses depend only on the
seed and the step (resumed runs are exact). The first augmented view and its encoding are computed once
and shared by the objectives that use them (CLIP, SimCLR).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from components.models.foundation import SignalLanguageModel
from components.training.augment import augment
from components.training.objectives import (
    clip_loss,
    grouped_nt_xent,
    masked_reconstruction_loss,
    nt_xent,
    patch_time_mask,
)
from components.training.params import PretrainParams

Batch = dict[str, torch.Tensor]
Gather = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class Step:
    """One step's inputs; ``gather`` concatenates a tensor across DDP ranks (identity on one process)."""

    model: SignalLanguageModel
    params: PretrainParams
    batch: Batch
    gen: torch.Generator
    fs: int
    gather: Gather
    _first: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = field(default=None, repr=False)

    def view(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A freshly augmented view of the batch: ``(signal, lead mask)``."""
        return augment(self.batch["signal"], self.batch["lead_mask"], self.params.augment, self.fs, self.gen)

    def first(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The step's first augmented view and its pooled encoding: ``(signal, lead mask, pooled)``."""
        if self._first is None:
            signal, mask = self.view()
            self._first = (signal, mask, self.model.ecg(signal, mask))
        return self._first


def clip(step: Step) -> torch.Tensor:
    """ECG ↔ report InfoNCE over the whole (gathered) batch; identical reports are positives."""
    model, batch = step.model, step.batch
    assert model.ecg_proj is not None
    ecg = F.normalize(model.ecg_proj(step.first()[2]), dim=-1)
    if "text_features" in batch:  # a frozen report encoder's cached embeddings
        text = F.normalize(model.text_proj(batch["text_features"]), dim=-1)
    else:
        text = model.embed_text(batch["tokens"])
    return clip_loss(step.gather(ecg), step.gather(text), model.logit_scale, step.gather(batch["report_id"]))


def ecg_ecg(step: Step) -> torch.Tensor:
    """SimCLR: the first view's and a second view's projections, each the other's positive."""
    head = _view_head(step.model)
    second, second_mask = step.view()
    z1, z2 = head(step.first()[2]), head(step.model.ecg(second, second_mask))
    return nt_xent(step.gather(z1), step.gather(z2), step.params.objectives.ecg_ecg_temperature)


def patient(step: Step) -> torch.Tensor:
    """CAPE: a record and another ECG of its patient (an augmented view of itself when it is the
    patient's only record) are positives; every view of the same patient in the batch is one too.
    Batches without partners (validation) contrast two views of each record."""
    batch = step.batch
    partner, partner_mask = augment(
        batch.get("partner_signal", batch["signal"]),
        batch.get("partner_lead_mask", batch["lead_mask"]),
        step.params.augment,
        step.fs,
        step.gen,
    )
    head = _view_head(step.model)
    z1, z2 = head(step.first()[2]), head(step.model.ecg(partner, partner_mask))
    ids = step.gather(batch["patient_id"])
    return grouped_nt_xent(step.gather(z1), step.gather(z2), ids, step.params.objectives.ecg_ecg_temperature)


def masked_reconstruction(step: Step) -> torch.Tensor:
    """Mean squared error of the masked samples, rebuilt from the whole encoder's features."""
    signal, mask, _ = step.first()
    encoder = step.model.ecg
    hidden = patch_time_mask(
        len(signal), signal.shape[-1], encoder.stride, step.params.masking.ratio, step.gen, signal.device
    )
    features, _ = encoder.encode(signal * ~hidden, mask)
    estimate = step.model.reconstruct_signal(features, signal.shape[-1])
    return masked_reconstruction_loss(estimate, signal, hidden, mask)


def text_text(step: Step) -> torch.Tensor:
    """SimCSE on training-patient reports: two dropout passes of the same reports are positives."""
    extra = step.batch["extra_tokens"]
    model = step.model
    return nt_xent(
        model.embed_text(extra), model.embed_text(extra), step.params.objectives.text_text_temperature
    )


def _view_head(model: SignalLanguageModel) -> torch.nn.Module:
    assert model.view_proj is not None, "the model was built without its ECG–ECG projection head"
    return model.view_proj


#: objective name (``objectives.<name>`` in params) → its loss on one step
LOSSES: dict[str, Callable[[Step], torch.Tensor]] = {
    "clip": clip,
    "ecg_ecg": ecg_ecg,
    "masked_reconstruction": masked_reconstruction,
    "patient": patient,
    "text_text": text_text,
}


#: objectives whose inputs only training batches carry (``extra_tokens``)
TRAINING_ONLY = frozenset({"text_text"})


def step_losses(step: Step, *, training: bool = True) -> dict[str, torch.Tensor]:
    """Every weighted objective's loss, and ``loss``, their weighted sum (in validation, of the objectives
    validation batches can feed)."""
    weights = {
        name: w
        for name, w in step.params.objectives.weights().items()
        if w > 0 and (training or name not in TRAINING_ONLY)
    }
    losses = {name: LOSSES[name](step) for name in weights}
    if not losses:
        return losses
    losses["loss"] = torch.stack([weights[name] * value for name, value in losses.items()]).sum()
    return losses
