"""ECG-FM pretraining parts (wav2vec 2.0 + CMSC + RLM): span masks, the masked contrastive loss, random lead
masking and CMSC's adjacent segments.

Every random draw takes a :class:`torch.Generator` (as :mod:`components.training.augment`), so a step's
masks and distractors depend only on the seed and the step and resumed runs are exact. The CMSC loss itself
is :func:`components.training.objectives.grouped_nt_xent` over the two segments' pooled embeddings with
the patient ids as groups.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def span_mask(
    batch: int, length: int, mask_prob: float, span: int, gen: torch.Generator, device: torch.device
) -> torch.Tensor:
    """``(b, l)`` bool: random spans of ``span`` consecutive latent steps, as wav2vec 2.0 masks.

    Each row draws ``int(mask_prob * length / span + u)`` span starts (``u`` uniform in [0, 1): rounding at
    random keeps the expected count exact) without replacement among all steps; each masks ``span`` steps
    from its start, clipped at the end. Spans may overlap, so the masked share is below ``mask_prob``
    (about ``1 - exp(-mask_prob)``). Every row has at least one masked and one unmasked step: a row masked
    throughout gets one random step unmasked.
    """
    u = torch.rand(batch, generator=gen, device=device)
    n_starts = (mask_prob * length / span + u).long().clamp(1, length)
    order = torch.rand(batch, length, generator=gen, device=device).argsort(1)
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(length, device=device).expand(batch, -1))
    starts = (rank < n_starts.unsqueeze(1)).long()
    covering = starts.cumsum(1)
    covering[:, span:] -= covering[:, :-span].clone()
    mask = covering > 0
    keep = torch.randint(0, length, (batch,), generator=gen, device=device)
    full = mask.all(1)
    mask[full, keep[full]] = False
    return mask


def distractor_indices(mask: torch.Tensor, n_distractors: int, gen: torch.Generator) -> torch.Tensor:
    """``(n_masked, n_distractors)`` flat indices into ``(b * l)``: for each masked step (in
    ``mask.nonzero()`` order), distractors drawn uniformly from the OTHER masked steps of its record.

    Without replacement where the record has more than ``n_distractors`` masked steps, else with
    replacement; a record with a single masked step gets that step itself (the loss ignores it).
    """
    length = mask.shape[1]
    device = mask.device
    rows, cols = mask.nonzero(as_tuple=True)
    n = len(rows)
    own = rows * length + cols
    candidates = mask[rows] & (torch.arange(length, device=device) != cols.unsqueeze(1))
    # without replacement: the n_distractors candidates with the highest random scores
    scores = torch.rand(n, length, generator=gen, device=device).masked_fill(~candidates, -1.0)
    k = min(n_distractors, length)
    unique = scores.topk(k, dim=1).indices
    unique = torch.cat([unique, unique[:, :1].expand(-1, n_distractors - k)], dim=1)
    # with replacement: uniform ranks among the record's other masked steps
    others = candidates.sum(1)
    draws = torch.rand(n, n_distractors, generator=gen, device=device)
    ranks = (draws * others.clamp_min(1).unsqueeze(1)).long()
    cumulative = candidates.long().cumsum(1)
    repeated = torch.searchsorted(cumulative, ranks + 1, right=False).clamp_max(length - 1)
    enough = (others >= n_distractors).unsqueeze(1)
    chosen = torch.where(enough, unique, repeated)
    chosen = torch.where((others > 0).unsqueeze(1), chosen, cols.unsqueeze(1))
    return rows.unsqueeze(1) * length + chosen if n else own.new_zeros(0, n_distractors)


def masked_contrastive_loss(
    context: torch.Tensor,
    targets: torch.Tensor,
    mask: torch.Tensor,
    *,
    n_distractors: int,
    temperature: float,
    gen: torch.Generator,
) -> torch.Tensor:
    """wav2vec 2.0's contrastive task, mean over the masked steps.

    ``context`` ``(b, l, d)``: the (projected) transformer output of the masked pass; ``targets``
    ``(b, l, d)``: the unmasked latents (projected to the same width); ``mask`` ``(b, l)`` bool. At each
    masked step the cosine similarity over ``temperature`` with the true latent (class 0) competes with
    ``n_distractors`` latents of other masked steps of the same record (:func:`distractor_indices`); a
    distractor that is the step itself or equals the true latent exactly is left out (logit −inf).
    """
    b, length, d = targets.shape
    index = distractor_indices(mask, n_distractors, gen)
    rows, cols = mask.nonzero(as_tuple=True)
    own = (rows * length + cols).unsqueeze(1)
    flat = targets.reshape(b * length, d)
    unit = F.normalize(flat, dim=-1)  # normalised once, then gathered: cosine similarities as dot products
    candidates = torch.cat([unit[own], unit[index]], dim=1)
    query = F.normalize(context[rows, cols], dim=-1)
    logits = torch.einsum("nd,nkd->nk", query, candidates) / temperature
    same = (index == own) | (flat[index] == flat[own]).all(-1)
    logits = torch.cat([logits[:, :1], logits[:, 1:].masked_fill(same, float("-inf"))], dim=1)
    zeros = torch.zeros(len(logits), dtype=torch.long, device=logits.device)
    return F.cross_entropy(logits, zeros)


def adjacent_segments(signal: torch.Tensor, lead_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """CMSC's two views: the first and second halves ``(b, 12, t // 2)`` of each record (adjacent, not
    overlapping; an odd last sample is dropped), absent leads zeroed (as augmented views are).

    Both halves share ``lead_mask``.
    """
    half = signal.shape[-1] // 2
    present = signal * lead_mask.unsqueeze(-1).to(signal.dtype)
    return present[..., :half], present[..., half : 2 * half]
