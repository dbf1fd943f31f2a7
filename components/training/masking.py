"""Multi-scale temporal span masks over patches, for masked autoencoding.

A row's masked budget, ``round(ratio * n_patches)`` patches, is split across span lengths ("scales", in
patches) so that the model must both fill short gaps from their neighbours and rebuild whole beats or
rhythm stretches. The spans and the visible patches are laid out in a random order per row, so spans never
overlap and every row masks exactly the budget (spans may touch, forming a longer masked run). The draws
come from a passed :class:`torch.Generator` only, on the batch's device.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def span_lengths(budget: int, scales: Sequence[int]) -> list[int]:
    """The spans a row's ``budget`` of masked patches is split into, longest first.

    Each scale gets about ``budget / len(scales)`` patches and at least one span, as long as one span of
    every shorter scale still fits (a scale that does not is skipped); what is left goes to spans of the
    shortest scale, then to single patches.
    """
    ordered = sorted(set(scales), reverse=True)
    if not ordered or ordered[-1] < 1:
        raise ValueError(f"scales must be positive patch counts, got {list(scales)}")
    share = budget / len(ordered)
    lengths: list[int] = []
    remaining = budget
    for i, scale in enumerate(ordered):
        room = remaining - sum(ordered[i + 1 :])  # one span of every shorter scale still fits
        count = max(0, min(room // scale, max(1, int(share // scale))))
        lengths += [scale] * count
        remaining -= count * scale
    lengths += [ordered[-1]] * (remaining // ordered[-1])
    return lengths + [1] * (remaining % ordered[-1])


def multiscale_span_mask(
    batch: int,
    n_patches: int,
    ratio: float,
    scales: Sequence[int],
    gen: torch.Generator,
    device: torch.device,
) -> torch.Tensor:
    """``(batch, n_patches)`` bool, True = masked: exactly ``round(ratio * n_patches)`` per row, in
    contiguous spans of the given ``scales`` (see :func:`span_lengths`)."""
    budget = round(ratio * n_patches)
    if not 0 <= budget < n_patches:
        raise ValueError(f"mask ratio {ratio} leaves no visible patch of {n_patches}")
    lengths = torch.tensor(span_lengths(budget, scales), device=device)
    spans, free = len(lengths), n_patches - budget
    # a random arrangement of the spans and the free (visible) patches, and of the spans' order
    slots = torch.rand(batch, spans + free, generator=gen, device=device).argsort(1)
    is_span = torch.zeros(batch, spans + free, dtype=torch.bool, device=device)
    is_span.scatter_(1, slots[:, :spans], True)
    order = lengths[torch.rand(batch, spans, generator=gen, device=device).argsort(1)]
    which = (is_span.cumsum(1) - 1).clamp_min(0)
    size = torch.where(is_span, order.gather(1, which), torch.ones_like(which))
    start = size.cumsum(1) - size
    edges = torch.zeros(batch, n_patches + 1, dtype=torch.long, device=device)
    span_start = start.masked_fill(~is_span, n_patches)
    edges.scatter_add_(1, span_start, is_span.long())
    edges.scatter_add_(1, (start + size).masked_fill(~is_span, n_patches), -is_span.long())
    return edges.cumsum(1)[:, :n_patches] > 0
