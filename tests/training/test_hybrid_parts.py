"""The hybrid MAE + SimCLR recipe's parts: MAE encoder/decoder/loss, multi-scale span masks, R-peak crops."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from components.io.store import DatasetStore
from components.io.store_view import StoreView
from components.models.config import EcgEncoderConfig
from components.models.ecg_transformer import PatchTransformer
from components.models.mae import MAEDecoder, keep_indices, mae_loss, normalised_patches, patchify
from components.quality import batch_features, rpeak_positions
from components.training.masking import multiscale_span_mask, span_lengths
from components.training.rpeaks import rpeak_aligned_crop, rpeak_table
from components.validation import load_policy

PATCH = 25
CPU = torch.device("cpu")


def _encoder() -> PatchTransformer:
    torch.manual_seed(0)
    cfg = EcgEncoderConfig(arch="transformer", width=32, depth=2, heads=2, patch_size=PATCH, dropout=0.0)
    return PatchTransformer(cfg, max_samples=1000).eval()


def _records(store: DatasetStore, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    rows = np.arange(n)
    return torch.from_numpy(StoreView(store.root).read(rows)), torch.from_numpy(store.lead_masks()[rows])


def _runs(row: torch.Tensor) -> list[int]:
    """Lengths of the masked runs of one ``(l,)`` bool row."""
    padded = torch.cat([torch.zeros(1), row.float(), torch.zeros(1)])
    edges = padded.diff().nonzero().flatten().tolist()
    return [end - start for start, end in zip(edges[::2], edges[1::2], strict=True)]


def test_mae_encoder_never_receives_a_masked_patch(demo_store: DatasetStore) -> None:
    signal, leads = _records(demo_store, 4)
    encoder = _encoder()
    masked = multiscale_span_mask(4, 40, 0.6, (1, 4, 8), torch.Generator().manual_seed(0), CPU)
    keep = keep_indices(masked)
    with torch.no_grad():
        out = encoder.encode_visible(signal, leads, keep)
        assert out.shape == (4, 40 - 24 + 1, 32)
        hidden = signal.clone()
        hidden[masked.repeat_interleave(PATCH, 1).unsqueeze(1).expand_as(signal)] = 5.0
        assert torch.equal(encoder.encode_visible(hidden, leads, keep), out)
        seen = signal.clone()
        seen[0, :, keep[0, 3] * PATCH] += 1.0
        assert not torch.equal(encoder.encode_visible(seen, leads, keep)[0], out[0])
        # with every patch kept it is the ordinary encoder
        everything = keep_indices(torch.zeros(4, 40, dtype=torch.bool))
        features, cls = encoder.encode(signal, leads)
        full = encoder.encode_visible(signal, leads, everything)
        assert torch.allclose(full[:, 0], cls, atol=1e-5)
        assert torch.allclose(full[:, 1:], features.transpose(1, 2), atol=1e-5)


def test_mae_loss_counts_only_masked_patches_of_present_leads(demo_store: DatasetStore) -> None:
    signal, leads = _records(demo_store, 6)
    leads[1, 6:] = False
    patches = patchify(signal, PATCH)
    assert patches.shape == (6, 40, 12 * PATCH)
    assert torch.equal(patches[2, 7, 3 * PATCH : 4 * PATCH], signal[2, 3, 7 * PATCH : 8 * PATCH])
    target = normalised_patches(patches, leads, PATCH)
    assert (target.unflatten(-1, (12, PATCH))[1, :, 6:] == 0).all()
    assert target.unflatten(-1, (12, PATCH)).mean(-1).abs().max() < 1e-4  # each lead centred per patch
    masked = multiscale_span_mask(6, 40, 0.5, (1, 4), torch.Generator().manual_seed(1), CPU)
    assert mae_loss(target, patches, masked, leads, PATCH) == 0
    wrong = target.clone().unflatten(-1, (12, PATCH))
    wrong[~masked] += 3.0  # visible patches
    wrong[1, :, 6:] += 3.0  # absent leads
    assert mae_loss(wrong.flatten(-2), patches, masked, leads, PATCH) == 0
    wrong[masked] += 1.0
    assert torch.isclose(mae_loss(wrong.flatten(-2), patches, masked, leads, PATCH), torch.tensor(1.0))


def test_multiscale_masks_hold_the_exact_budget_in_spans_of_every_scale() -> None:
    assert span_lengths(30, (1, 4, 8)) == [8, 4, 4] + [1] * 14
    assert all(sum(span_lengths(b, (1, 4, 16))) == b for b in range(40))
    masks = multiscale_span_mask(64, 40, 0.75, (1, 4, 8), torch.Generator().manual_seed(0), CPU)
    assert masks.shape == (64, 40) and (masks.sum(1) == 30).all()
    assert all(max(_runs(row)) >= 8 for row in masks)  # the 8-patch span is contiguous
    sparse = multiscale_span_mask(64, 80, 0.3, (2, 6), torch.Generator().manual_seed(0), CPU)
    runs = [n for row in sparse for n in _runs(row)]
    assert (sparse.sum(1) == 24).all() and min(runs) >= 2 and {2, 6} <= set(runs)
    assert len({tuple(row.tolist()) for row in masks}) > 60
    again = multiscale_span_mask(64, 40, 0.75, (1, 4, 8), torch.Generator().manual_seed(0), CPU)
    other = multiscale_span_mask(64, 40, 0.75, (1, 4, 8), torch.Generator().manual_seed(1), CPU)
    assert torch.equal(masks, again) and not torch.equal(masks, other)
    keep = keep_indices(masks)
    assert keep.shape == (64, 10) and not masks.gather(1, keep).any() and (keep.diff(dim=1) > 0).all()
    with pytest.raises(ValueError, match="same number"):
        keep_indices(torch.tensor([[True, False], [False, False]]))


def test_rpeak_detector_finds_plausible_heart_rates(demo_store: DatasetStore) -> None:
    rows = np.arange(64)
    peaks = rpeak_table(StoreView(demo_store.root), rows, demo_store.info.fs, batch=40)
    count = (peaks >= 0).sum(1)
    first, last = peaks[:, 0], peaks.max(1)
    bpm = 60 * (count - 1) / np.maximum(last - first, 1) * demo_store.info.fs
    assert np.mean((bpm >= 40) & (bpm <= 150)) >= 0.85
    found = peaks >= 0
    assert (found[:, :-1] >= found[:, 1:]).all() and (np.diff(peaks, axis=1)[found[:, 1:]] > 0).all()
    # the quality checks' detector: the same peaks as their rpeak_count
    signals, masks = StoreView(demo_store.root).read(rows), demo_store.lead_masks()[rows]
    features = batch_features(signals, 100.0, masks, np.full(64, 1000), load_policy().features)
    assert np.array_equal(count, features.per_record["rpeak_count"])
    assert np.array_equal(
        rpeak_positions(signals, masks, 100, load_policy().features)[:, : peaks.shape[1]], peaks
    )


def test_rpeak_aligned_crops_start_lead_in_before_a_detected_peak(demo_store: DatasetStore) -> None:
    signal, leads = _records(demo_store, 32)
    peaks = torch.from_numpy(
        rpeak_positions(signal.numpy(), leads.numpy(), 100, load_policy().features)
    ).long()
    peaks[5] = -1  # a record without a detected peak falls back to a random start
    crops = rpeak_aligned_crop(signal, peaks, 500, torch.Generator().manual_seed(0), lead_in=25)
    assert crops.signal.shape == (32, 12, 500) and not crops.aligned[5] and crops.aligned.sum() >= 28
    for i in range(32):
        start = int(crops.start[i])
        assert torch.equal(crops.signal[i], signal[i, :, start : start + 500])
        assert bool(crops.aligned[i]) == (start + 25 in peaks[i].tolist())
    again = rpeak_aligned_crop(signal, peaks, 500, torch.Generator().manual_seed(0), lead_in=25)
    other = rpeak_aligned_crop(signal, peaks, 500, torch.Generator().manual_seed(1), lead_in=25)
    assert torch.equal(again.signal, crops.signal) and not torch.equal(other.start, crops.start)


def test_a_few_mae_steps_lower_the_reconstruction_loss(demo_store: DatasetStore) -> None:
    torch.set_num_threads(1)  # a tiny model: threads only contend (the autouse fixture restores it)
    signal, leads = _records(demo_store, 16)
    encoder = _encoder().train()
    decoder = MAEDecoder(32, 32, 1, 2, n_patches=40, patch_values=12 * PATCH)
    optimiser = torch.optim.AdamW([*encoder.parameters(), *decoder.parameters()], lr=3e-3)
    target = patchify(signal, PATCH)

    def loss(seed: int) -> torch.Tensor:
        masked = multiscale_span_mask(16, 40, 0.6, (1, 4, 8), torch.Generator().manual_seed(seed), CPU)
        keep = keep_indices(masked)
        prediction = decoder(encoder.encode_visible(signal, leads, keep), keep)
        return mae_loss(prediction, target, masked, leads, PATCH)

    with torch.no_grad():
        before = loss(seed=999)
    for step in range(40):
        optimiser.zero_grad()
        loss(step).backward()
        optimiser.step()
    with torch.no_grad():
        after = loss(seed=999)
    assert after < 0.8 * before, (before, after)


def test_a_crop_is_encoded_at_its_place_in_the_record(demo_store: DatasetStore) -> None:
    """Absolute positions: a crop starting at patch 20 gets the positions of patches 20.., so training on
    crops trains the positions the whole record uses; ``start`` 0 is the whole record's encoding."""
    signal, leads = _records(demo_store, 2)
    encoder = _encoder()
    crop = signal[..., 500:]
    with torch.no_grad():
        whole = encoder(signal, leads)
        assert torch.equal(encoder(signal, leads, torch.zeros(2, dtype=torch.long)), whole)
        placed = encoder.encode_visible(crop, leads, torch.arange(20).expand(2, -1), torch.full((2,), 500))
        alone = encoder.encode_visible(crop, leads, torch.arange(20).expand(2, -1))
        table = encoder.position[0, 1:]
        assert torch.equal(encoder._positions(torch.arange(20), torch.full((2,), 500))[0], table[20:40])
    assert not torch.allclose(placed, alone)
