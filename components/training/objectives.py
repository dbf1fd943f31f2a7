"""Pretraining losses: CLIP InfoNCE (ECG ↔ report), NT-Xent (ECG ↔ ECG, optionally with grouped positives),
masked signal reconstruction."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def clip_loss(
    ecg: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor, report_ids: torch.Tensor
) -> torch.Tensor:
    """Symmetric InfoNCE over unit-norm embeddings with a learnable temperature.

    Records whose reports are identical (``report_ids`` equal; common in PTB-XL, e.g. "sinusrhythmus
    normales ekg") are all positives of each other, with the target mass spread over them, instead of
    being pushed apart as false negatives.
    """
    logits = logit_scale.exp().clamp(max=100.0) * ecg @ text.t()
    same = (report_ids.unsqueeze(0) == report_ids.unsqueeze(1)).to(logits.dtype)
    targets = same / same.sum(1, keepdim=True)
    return 0.5 * (F.cross_entropy(logits, targets) + F.cross_entropy(logits.t(), targets))


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's loss between two views: each view's partner is its positive, the other 2b-2 negatives."""
    z = F.normalize(torch.cat([z1, z2]), dim=-1)
    n = len(z1)
    logits = z @ z.t() / temperature
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(logits, targets)


def grouped_nt_xent(
    z1: torch.Tensor, z2: torch.Tensor, group_ids: torch.Tensor, temperature: float
) -> torch.Tensor:
    """NT-Xent where every other view of the same group is a positive (multi-positive InfoNCE).

    ``z1[i]`` and ``z2[i]`` are two views of item ``i`` (two segments of a record, two records of a
    patient); ``group_ids[i]`` its group (the patient). Every view of an item in the same group, other than
    the anchor itself, is a positive, with the target mass spread evenly over them; with distinct ids this
    is :func:`nt_xent`.
    """
    z = F.normalize(torch.cat([z1, z2]), dim=-1)
    ids = torch.cat([group_ids, group_ids])
    itself = torch.eye(len(z), dtype=torch.bool, device=z.device)
    logits = (z @ z.t() / temperature).masked_fill(itself, float("-inf"))
    positive = (ids.unsqueeze(0) == ids.unsqueeze(1)) & ~itself
    targets = positive.to(logits.dtype) / positive.sum(1, keepdim=True).to(logits.dtype)
    return -(targets * F.log_softmax(logits, dim=1).masked_fill(itself, 0.0)).sum(1).mean()


def patch_time_mask(
    batch: int, n_samples: int, patch: int, ratio: float, gen: torch.Generator, device: torch.device
) -> torch.Tensor:
    """``(b, 1, t)`` bool: ``ratio`` of the ``patch``-sample windows of each record, chosen at random."""
    n_patches = -(-n_samples // patch)
    n_masked = max(1, round(ratio * n_patches))
    order = torch.rand(batch, n_patches, generator=gen, device=device).argsort(1)
    masked = torch.zeros(batch, n_patches, dtype=torch.bool, device=device)
    masked.scatter_(1, order[:, :n_masked], True)
    return masked.repeat_interleave(patch, dim=1)[:, :n_samples].unsqueeze(1)


def masked_reconstruction_loss(
    estimate: torch.Tensor, target: torch.Tensor, time_mask: torch.Tensor, lead_mask: torch.Tensor
) -> torch.Tensor:
    """Mean squared error (mV²) over the masked samples of the present leads."""
    weight = time_mask.to(target.dtype) * lead_mask.to(target.dtype).unsqueeze(-1)
    return ((estimate - target) ** 2 * weight).sum() / weight.sum().clamp_min(1.0)
