"""ECG augmentations on batches (on the training device): crop, scaling, wander, noise, time mask, leads
(dropout, ECG-FM's random lead masking).

Every function takes a :class:`torch.Generator`, so a step's augmentations depend only on the seed and
the step (see :class:`components.training.module.PretrainModule`), which makes resumed runs exact.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from components.training.params import AugmentParams


def _uniform(shape: tuple[int, ...], low: float, high: float, gen: torch.Generator, device: torch.device):
    return low + (high - low) * torch.rand(shape, generator=gen, device=device)


def random_crop(signal: torch.Tensor, length: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The same ``length`` for the batch, a random start per record: ``(crops, starts (b,))``."""
    b, _, t = signal.shape
    if length >= t:
        return signal, torch.zeros(b, dtype=torch.long, device=signal.device)
    starts = torch.randint(0, t - length + 1, (b,), generator=gen, device=signal.device)
    index = starts.view(b, 1, 1) + torch.arange(length, device=signal.device).view(1, 1, -1)
    return signal.gather(2, index.expand(b, signal.shape[1], length)), starts


def amplitude_scale(signal: torch.Tensor, spread: float, gen: torch.Generator) -> torch.Tensor:
    factors = _uniform((signal.shape[0], signal.shape[1], 1), 1 - spread, 1 + spread, gen, signal.device)
    return signal * factors


def baseline_wander(signal: torch.Tensor, amplitude_mv: float, fs: int, gen: torch.Generator) -> torch.Tensor:
    """Add a sum of two slow sinusoids (0.05–0.5 Hz, random phase) shared across leads, scaled per lead."""
    b, leads, t = signal.shape
    time = torch.arange(t, device=signal.device) / fs
    wander = torch.zeros(b, 1, t, device=signal.device)
    for _ in range(2):
        freq = _uniform((b, 1, 1), 0.05, 0.5, gen, signal.device)
        phase = _uniform((b, 1, 1), 0.0, 2 * math.pi, gen, signal.device)
        wander = wander + torch.sin(2 * math.pi * freq * time + phase)
    gain = _uniform((b, leads, 1), 0.0, amplitude_mv, gen, signal.device)
    return signal + gain * wander / 2


def gaussian_noise(signal: torch.Tensor, std_mv: float, gen: torch.Generator) -> torch.Tensor:
    return signal + std_mv * torch.randn(signal.shape, generator=gen, device=signal.device)


def time_mask(signal: torch.Tensor, fraction: float, gen: torch.Generator) -> torch.Tensor:
    """Zero one random contiguous span of ``fraction`` of the record, per record, all leads."""
    b, _, t = signal.shape
    span = round(fraction * t)
    if span == 0:
        return signal
    starts = torch.randint(0, t - span + 1, (b, 1, 1), generator=gen, device=signal.device)
    position = torch.arange(t, device=signal.device).view(1, 1, -1)
    return signal * ~((position >= starts) & (position < starts + span))


def lead_dropout(
    lead_mask: torch.Tensor, p_drop: float, p_single: float, gen: torch.Generator
) -> torch.Tensor:
    """A new lead mask: some records keep one present lead only, others lose each lead with prob. 1/2.

    Every record keeps at least one of its present leads.
    """
    b, leads = lead_mask.shape
    device = lead_mask.device
    u = torch.rand(b, generator=gen, device=device)
    single = u < p_single
    partial = (u >= p_single) & (u < p_single + p_drop)
    scores = torch.rand(b, leads, generator=gen, device=device).masked_fill(~lead_mask, -1.0)
    chosen = torch.zeros_like(lead_mask).scatter_(1, scores.argmax(1, keepdim=True), True)
    keep_random = (torch.rand(b, leads, generator=gen, device=device) < 0.5) & lead_mask
    mask = lead_mask.clone()
    mask[single] = chosen[single]
    mask[partial] = keep_random[partial] | chosen[partial]
    return mask


def random_lead_mask(lead_mask: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """RLM: each present lead of ``(b, 12)`` ``lead_mask`` dropped with probability ``p``, independently.

    No absent lead is ever added, and every record with a present lead keeps at least one (a record that
    would lose all keeps one of its present leads, chosen uniformly).
    """
    b, leads = lead_mask.shape
    device = lead_mask.device
    kept = lead_mask & (torch.rand(b, leads, generator=gen, device=device) >= p)
    scores = torch.rand(b, leads, generator=gen, device=device).masked_fill(~lead_mask, -1.0)
    one = torch.zeros_like(lead_mask).scatter_(1, scores.argmax(1, keepdim=True), True) & lead_mask
    return torch.where(kept.any(1, keepdim=True), kept, one)


class View(NamedTuple):
    """An augmented view of a batch: ``signal`` ``(b, 12, t')``, ``lead_mask`` ``(b, 12)``, and ``start``
    ``(b,)``, each view's first sample in its record (encoders with absolute positions place it by it)."""

    signal: torch.Tensor
    lead_mask: torch.Tensor
    start: torch.Tensor


def augment(
    signal: torch.Tensor,
    lead_mask: torch.Tensor,
    p: AugmentParams,
    fs: int,
    gen: torch.Generator,
    start: torch.Tensor | None = None,
) -> View:
    """One augmented view of a batch; ``start``: where ``signal`` itself starts in its records (for a
    batch that is already a crop)."""
    x, crop_start = random_crop(signal, max(1, round(p.crop_fraction * signal.shape[-1])), gen)
    x = amplitude_scale(x, p.scale, gen)
    x = baseline_wander(x, p.wander_mv, fs, gen)
    x = gaussian_noise(x, p.noise_mv, gen)
    x = time_mask(x, p.time_mask_fraction, gen)
    mask = lead_dropout(lead_mask, p.lead_dropout, p.single_lead, gen)
    if p.random_lead_mask > 0:
        mask = random_lead_mask(mask, p.random_lead_mask, gen)
    offset = crop_start if start is None else start + crop_start
    return View(x * mask.unsqueeze(-1).to(x.dtype), mask, offset)
