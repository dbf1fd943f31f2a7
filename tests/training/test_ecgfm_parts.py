"""ECG-FM pretraining parts on real records: the conv-transformer encoder, span masks, distractors, the masked
contrastive loss, random lead masking and CMSC segments."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from components.io.store import DatasetStore
from components.models.config import EcgEncoderConfig, FoundationConfig, TextEncoderConfig
from components.models.ecg import build_ecg_encoder
from components.models.ecg_wav2vec import ConvTransformer
from components.models.foundation import SignalLanguageModel
from components.training.augment import random_lead_mask
from components.training.wav2vec import (
    adjacent_segments,
    distractor_indices,
    masked_contrastive_loss,
    span_mask,
)

CPU = torch.device("cpu")
TINY = {"arch": "conv-transformer", "width": 32, "depth": 2, "heads": 2, "conv_channels": 32}


def _records(store: DatasetStore, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(store.read(np.arange(n))), torch.from_numpy(store.lead_masks()[:n])


def _encoder(seed: int = 0) -> ConvTransformer:
    torch.manual_seed(seed)
    encoder = build_ecg_encoder(EcgEncoderConfig.model_validate(TINY), 1000)
    assert isinstance(encoder, ConvTransformer)
    return encoder


def _runs(row: list[bool]) -> list[tuple[int, int]]:
    """(start, length) of each maximal run of True."""
    runs, start = [], None
    for i, value in enumerate([*row, False]):
        if value and start is None:
            start = i
        elif not value and start is not None:
            runs.append((start, i - start))
            start = None
    return runs


def _expected_masked_share(length: int, mask_prob: float, span: int) -> float:
    """Exact mean share of masked steps: starts drawn without replacement, each covering ``span`` steps."""
    mean = mask_prob * length / span
    counts = {math.floor(mean): 1 - (mean - math.floor(mean)), math.floor(mean) + 1: mean - math.floor(mean)}
    unmasked = 0.0
    for t in range(length):
        window = min(span, t + 1)
        unmasked += sum(w * math.comb(length - window, n) / math.comb(length, n) for n, w in counts.items())
    return 1 - unmasked / length


def test_span_masks_are_runs_of_at_least_span_steps_covering_the_expected_share() -> None:
    length, span, prob = 250, 10, 0.65
    mask = span_mask(400, length, prob, span, torch.Generator().manual_seed(0), CPU)
    assert mask.shape == (400, length) and mask.dtype == torch.bool
    for row in mask.tolist():
        assert all(n >= span or start + n == length for start, n in _runs(row))
    expected = _expected_masked_share(length, prob, span)
    assert 0.4 < expected < 0.55  # overlapping spans: well below mask_prob, as in wav2vec 2.0
    assert abs(mask.float().mean().item() - expected) < 0.01
    short = span_mask(50, 6, 0.9, 10, torch.Generator().manual_seed(1), CPU)  # spans longer than the row
    for m in (mask, short, span_mask(50, 40, 0.01, 5, torch.Generator().manual_seed(2), CPU)):
        assert m.any(1).all() and (~m).any(1).all()


def test_same_generator_seed_same_masks_and_distractors() -> None:
    def draw(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        gen = torch.Generator().manual_seed(seed)
        mask = span_mask(8, 125, 0.65, 10, gen, CPU)
        return mask, distractor_indices(mask, 20, gen)

    (m1, d1), (m2, d2), (m3, _) = draw(5), draw(5), draw(6)
    assert torch.equal(m1, m2) and torch.equal(d1, d2) and not torch.equal(m1, m3)


def test_distractors_are_other_masked_steps_of_the_same_record() -> None:
    length, n = 60, 10
    mask = span_mask(6, length, 0.65, 5, torch.Generator().manual_seed(3), CPU)
    mask[4] = False
    mask[4, [7, 20, 41]] = True  # fewer masked steps than distractors: with replacement, never itself
    mask[5] = False
    mask[5, 9] = True  # a single masked step: only itself (ignored by the loss)
    index = distractor_indices(mask, n, torch.Generator().manual_seed(0))
    rows, cols = mask.nonzero(as_tuple=True)
    assert index.shape == (len(rows), n)
    d_rows, d_cols = index // length, index % length
    assert (d_rows == rows.unsqueeze(1)).all()
    assert mask[d_rows, d_cols].all()
    for i, (r, c) in enumerate(zip(rows.tolist(), cols.tolist(), strict=True)):
        drawn = d_cols[i].tolist()
        if r < 4:  # enough masked steps: n distinct other steps
            assert len(set(drawn)) == n and c not in drawn
        elif r == 4:
            assert set(drawn) <= {7, 20, 41} - {c} and len(set(drawn)) == 2
        else:
            assert drawn == [9] * n
    # uniform over the record's other masked steps: every one of them is drawn over many draws
    many = distractor_indices(mask[:1].repeat(200, 1), n, torch.Generator().manual_seed(1))
    assert set((many % length).unique().tolist()) == set(mask[0].nonzero().squeeze(1).tolist())


def test_masked_contrastive_loss_draws_distractors_only_from_the_same_record() -> None:
    torch.manual_seed(0)
    targets = torch.randn(4, 40, 16)
    context = targets + 0.5 * torch.randn_like(targets)
    mask = span_mask(4, 40, 0.65, 5, torch.Generator().manual_seed(0), CPU)

    def loss(ctx: torch.Tensor, tgt: torch.Tensor) -> float:
        gen = torch.Generator().manual_seed(7)
        return masked_contrastive_loss(ctx, tgt, mask, n_distractors=8, temperature=0.1, gen=gen).item()

    # records 1-3 hold one latent throughout: every distractor of theirs equals the truth and is left out,
    # so they add nothing; record 0's terms do not change when their latents do
    a, b = targets.clone(), targets.clone()
    a[1:] = torch.randn(3, 1, 16).expand(3, 40, 16)
    b[1:] = torch.randn(3, 1, 16).expand(3, 40, 16)
    assert loss(context, a) > 0
    assert loss(context, a) == pytest.approx(loss(context, b), abs=1e-6)
    assert loss(context, torch.ones_like(targets)) == 0.0
    assert loss(targets, targets) < loss(context, targets) < loss(torch.randn_like(targets), targets)


def test_encoder_shapes_stride_and_any_length(demo_store: DatasetStore) -> None:
    encoder = _encoder().eval()
    signal, leads = _records(demo_store, 4)
    assert encoder.stride == 4 and encoder.feature_dim == encoder.output_dim == 32
    with torch.no_grad():
        features, pooled = encoder.encode(signal, leads)
        short_features, short_pooled = encoder.encode(signal[..., :800], leads)
        latents, short_latents = encoder.latents(signal, leads), encoder.latents(signal[..., :800], leads)
        assert torch.equal(encoder(signal, leads), pooled)
    assert features.shape == (4, 32, 250) and pooled.shape == (4, 32)
    assert short_features.shape == (4, 32, 200) and short_pooled.shape == (4, 32)
    assert torch.allclose(pooled, features.mean(-1), atol=1e-6)
    # latents are local: a crop's latents equal the full record's away from the crop's end
    assert torch.allclose(short_latents[:, :195], latents[:, :195], atol=1e-5)
    with pytest.raises(ValueError):
        encoder.latents(signal[..., :3], leads)


def test_conv_transformer_in_the_foundation_model_and_config_checks(demo_store: DatasetStore) -> None:
    cfg = FoundationConfig(
        fs=demo_store.info.fs,
        n_samples=demo_store.info.n_samples,
        embed_dim=16,
        ecg=EcgEncoderConfig.model_validate(TINY),
        text=TextEncoderConfig(vocab_size=100, width=32, depth=1, heads=2, max_tokens=16),
        reconstruction=True,
    )
    model = SignalLanguageModel(FoundationConfig.model_validate_json(cfg.model_dump_json())).eval()
    signal, leads = _records(demo_store, 2)
    with torch.no_grad():
        assert model.embed_ecg(signal, leads).shape == (2, 16)
        assert model.reconstruct_signal(model.ecg.encode(signal, leads)[0], 1000).shape == signal.shape
    with pytest.raises(ValueError):
        EcgEncoderConfig.model_validate({**TINY, "conv_strides": [2, 2]})
    with pytest.raises(ValueError):
        EcgEncoderConfig.model_validate({**TINY, "width": 40})  # not divisible by pos_conv_groups


def test_masked_steps_receive_only_the_mask_embedding(demo_store: DatasetStore) -> None:
    encoder = _encoder().eval()
    signal, leads = _records(demo_store, 2)
    with torch.no_grad():
        latents = encoder.latents(signal, leads)
        everything = torch.ones(latents.shape[:2], dtype=torch.bool)
        a = encoder.contextualize(latents, everything)
        b = encoder.contextualize(torch.randn_like(latents), everything)
        mask = span_mask(2, latents.shape[1], 0.65, 10, torch.Generator().manual_seed(0), CPU)
        noise = torch.randn_like(latents)
        base = encoder.contextualize(latents, mask)
        masked_changed = encoder.contextualize(torch.where(mask.unsqueeze(-1), noise, latents), mask)
        unmasked_changed = encoder.contextualize(torch.where(mask.unsqueeze(-1), latents, noise), mask)
    assert torch.allclose(a, b, atol=1e-5)
    assert torch.allclose(base, masked_changed, atol=1e-5)
    assert not torch.allclose(base, unmasked_changed, atol=1e-3)


def test_random_lead_mask_keeps_a_present_lead_and_never_adds_one(demo_store: DatasetStore) -> None:
    leads = torch.from_numpy(demo_store.lead_masks()[:40]).repeat(25, 1)
    leads[0] = False
    leads[0, 1] = True  # single lead: kept
    leads[1, 6:] = False  # limb leads only
    gen = torch.Generator().manual_seed(0)
    dropped = random_lead_mask(leads, 0.5, gen)
    assert not (dropped & ~leads).any()
    assert (dropped.sum(1) >= 1).all() and dropped[0].tolist() == leads[0].tolist()
    full = leads.all(1)
    kept = dropped[full].float().sum(1).mean().item()
    assert 5.5 < kept < 6.6  # half of 12, plus the rare all-dropped records that keep one
    assert torch.equal(random_lead_mask(leads, 0.0, gen), leads)
    assert (random_lead_mask(leads, 1.0, gen).sum(1) == 1).all()


def test_adjacent_segments_are_adjacent_equal_halves(demo_store: DatasetStore) -> None:
    signal, leads = _records(demo_store, 6)
    leads[2, 3:] = False
    first, second = adjacent_segments(signal, leads)
    assert first.shape == second.shape == (6, 12, 500)
    assert torch.equal(torch.cat([first, second], dim=-1)[leads], signal[leads])
    assert (first[2, 3:] == 0).all() and (second[2, 3:] == 0).all()
    odd_first, odd_second = adjacent_segments(signal[..., :999], leads)
    assert odd_first.shape[-1] == odd_second.shape[-1] == 499
    assert torch.equal(odd_second[leads], signal[..., 499:998][leads])


def test_optimiser_steps_lower_the_masked_contrastive_loss(demo_store: DatasetStore) -> None:
    encoder = _encoder().eval()  # no dropout: the comparison is between deterministic passes
    head = torch.nn.Linear(32, 32)
    signal, leads = _records(demo_store, 4)
    signal = signal[..., :600]  # a crop: 150 latent steps
    optimizer = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=3e-3)

    def step_loss() -> torch.Tensor:
        gen = torch.Generator().manual_seed(0)
        latents = encoder.latents(signal, leads)
        mask = span_mask(4, latents.shape[1], 0.65, 10, gen, CPU)
        context = head(encoder.contextualize(latents, mask))
        return masked_contrastive_loss(context, latents, mask, n_distractors=20, temperature=0.1, gen=gen)

    losses = []
    for _ in range(6):
        loss = step_loss()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0] - 0.1
