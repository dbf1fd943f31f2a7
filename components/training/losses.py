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

from components.models.ecg_transformer import PatchTransformer
from components.models.ecg_wav2vec import ConvTransformer
from components.models.foundation import SignalLanguageModel
from components.models.mae import keep_indices, mae_loss, patchify
from components.training.augment import View, augment
from components.training.masking import multiscale_span_mask
from components.training.objectives import (
    clip_loss,
    grouped_nt_xent,
    masked_reconstruction_loss,
    nt_xent,
    patch_time_mask,
)
from components.training.params import PretrainParams
from components.training.rpeaks import rpeak_aligned_crop
from components.training.wav2vec import adjacent_segments, masked_contrastive_loss, span_mask

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
    _first: View | None = field(default=None, repr=False)
    _pooled: torch.Tensor | None = field(default=None, repr=False)

    def view(self, signal: torch.Tensor | None = None, lead_mask: torch.Tensor | None = None) -> View:
        """A freshly augmented view of the batch (or of ``signal`` with ``lead_mask``, e.g. a partner). With
        ``augment.rpeak_crop`` (and the batch's ``rpeaks``), the crop starts ``rpeak_lead_in_s`` before a
        detected R-peak."""
        p = self.params.augment
        own = signal is None  # the batch's records, whose R-peaks the batch carries
        signal = self.batch["signal"] if signal is None else signal
        lead_mask = self.batch["lead_mask"] if lead_mask is None else lead_mask
        if own and p.rpeak_crop and "rpeaks" in self.batch:
            length = max(1, round(p.crop_fraction * signal.shape[-1]))
            lead_in = round(p.rpeak_lead_in_s * self.fs)
            crops = rpeak_aligned_crop(signal, self.batch["rpeaks"], length, self.gen, lead_in)
            rest = p.model_copy(update={"crop_fraction": 1.0})
            return augment(crops.signal, lead_mask, rest, self.fs, self.gen, start=crops.start)
        return augment(signal, lead_mask, p, self.fs, self.gen)

    def first(self) -> View:
        """The step's first augmented view, shared by the objectives."""
        if self._first is None:
            self._first = self.view()
        return self._first

    def pooled(self) -> torch.Tensor:
        """The encoder's pooled features of the first view."""
        if self._pooled is None:
            self._pooled = encode_pooled(self.model, self.first())
        return self._pooled


def encode_pooled(model: SignalLanguageModel, view: View) -> torch.Tensor:
    """The encoder's pooled features of a view (placed at its start in its records)."""
    pooled: torch.Tensor = model.ecg(view.signal, view.lead_mask, view.start)
    return pooled


def clip(step: Step) -> torch.Tensor:
    """ECG ↔ report InfoNCE over the whole (gathered) batch; identical reports are positives."""
    model, batch = step.model, step.batch
    assert model.ecg_proj is not None
    ecg = F.normalize(model.ecg_proj(step.pooled()), dim=-1)
    if "text_features" in batch:  # a frozen report encoder's cached embeddings
        text = F.normalize(model.text_proj(batch["text_features"]), dim=-1)
    else:
        text = model.embed_text(batch["tokens"])
    return clip_loss(step.gather(ecg), step.gather(text), model.logit_scale, step.gather(batch["report_id"]))


def ecg_ecg(step: Step) -> torch.Tensor:
    """SimCLR: the first view's and a second view's projections, each the other's positive."""
    head = _view_head(step.model)
    z1, z2 = head(step.pooled()), head(encode_pooled(step.model, step.view()))
    return nt_xent(step.gather(z1), step.gather(z2), step.params.objectives.ecg_ecg_temperature)


def patient(step: Step) -> torch.Tensor:
    """CAPE: a record and another ECG of its patient (an augmented view of itself when it is the
    patient's only record) are positives; every view of the same patient in the batch is one too.
    Batches without partners (validation) contrast two views of each record."""
    batch = step.batch
    partner = step.view(batch.get("partner_signal"), batch.get("partner_lead_mask"))
    head = _view_head(step.model)
    z1, z2 = head(step.pooled()), head(encode_pooled(step.model, partner))
    ids = step.gather(batch["patient_id"])
    return grouped_nt_xent(step.gather(z1), step.gather(z2), ids, step.params.objectives.ecg_ecg_temperature)


def masked_reconstruction(step: Step) -> torch.Tensor:
    """Mean squared error of the masked samples, rebuilt from the whole encoder's features."""
    signal, mask, start = step.first()
    encoder = step.model.ecg
    hidden = patch_time_mask(
        len(signal), signal.shape[-1], encoder.stride, step.params.masking.ratio, step.gen, signal.device
    )
    features, _ = encoder.encode(signal * ~hidden, mask, start)
    estimate = step.model.reconstruct_signal(features, signal.shape[-1])
    return masked_reconstruction_loss(estimate, signal, hidden, mask)


def text_text(step: Step) -> torch.Tensor:
    """SimCSE on training-patient reports: two dropout passes of the same reports are positives."""
    extra = step.batch["extra_tokens"]
    model = step.model
    return nt_xent(
        model.embed_text(extra), model.embed_text(extra), step.params.objectives.text_text_temperature
    )


def mae(step: Step) -> torch.Tensor:
    """Masked autoencoder: spans at several scales are hidden, the encoder sees only the visible patches
    and the light decoder rebuilds the hidden ones (normalised patches, present leads)."""
    model, p = step.model, step.params
    encoder, decoder = model.ecg, model.decoder
    assert isinstance(encoder, PatchTransformer) and decoder is not None
    signal, mask, start = step.first()
    patches = patchify(signal, encoder.patch_size)
    n = patches.shape[1]
    hidden = multiscale_span_mask(len(signal), n, p.masking.ratio, p.masking.scales, step.gen, signal.device)
    keep = keep_indices(hidden)
    prediction = decoder(encoder.encode_visible(signal, mask, keep, start), keep, n_patches=n)
    return mae_loss(prediction, patches, hidden, mask, encoder.patch_size)


def wav2vec(step: Step) -> torch.Tensor:
    """ECG-FM's masked contrastive objective: spans of the latent sequence are masked, and the
    transformer's output at each masked step must pick its true latent among distractors of the same
    record."""
    model, p = step.model, step.params
    encoder = model.ecg
    assert isinstance(encoder, ConvTransformer) and model.context_proj is not None
    assert model.target_proj is not None
    view = step.first()
    latents = encoder.latents(view.signal, view.lead_mask)
    mask = span_mask(
        len(latents), latents.shape[1], p.masking.ratio, p.masking.span, step.gen, latents.device
    )
    context = model.context_proj(encoder.contextualize(latents, mask))
    return masked_contrastive_loss(
        context,
        model.target_proj(latents),
        mask,
        n_distractors=p.objectives.wav2vec_distractors,
        temperature=p.objectives.wav2vec_temperature,
        gen=step.gen,
    )


def cmsc(step: Step) -> torch.Tensor:
    """ECG-FM's CMSC: two adjacent segments of a record are positives, and so are the segments of two
    records of one patient; each segment is augmented on its own."""
    batch, p = step.batch, step.params
    first, second = adjacent_segments(batch["signal"], batch["lead_mask"])
    mask, head = batch["lead_mask"], _view_head(step.model)
    at_start = torch.zeros(len(mask), dtype=torch.long, device=mask.device)
    views = (
        augment(first, mask, p.augment, step.fs, step.gen, at_start),
        augment(second, mask, p.augment, step.fs, step.gen, at_start + first.shape[-1]),
    )
    z = [head(encode_pooled(step.model, view)) for view in views]
    ids = step.gather(batch["patient_id"])
    return grouped_nt_xent(step.gather(z[0]), step.gather(z[1]), ids, p.objectives.ecg_ecg_temperature)


def _view_head(model: SignalLanguageModel) -> torch.nn.Module:
    assert model.view_proj is not None, "the model was built without its ECG–ECG projection head"
    return model.view_proj


#: objective name (``objectives.<name>`` in params) → its loss on one step
LOSSES: dict[str, Callable[[Step], torch.Tensor]] = {
    "clip": clip,
    "ecg_ecg": ecg_ecg,
    "masked_reconstruction": masked_reconstruction,
    "patient": patient,
    "wav2vec": wav2vec,
    "mae": mae,
    "cmsc": cmsc,
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
