"""ECG encoders on real records: shapes for 12, 6 and 1 leads, and the lead mask really masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from components.io.leads import STANDARD_LEADS
from components.io.store import DatasetStore
from components.models.config import EcgEncoderConfig, FoundationConfig, TextEncoderConfig
from components.models.foundation import SignalLanguageModel

LEAD_SETS = {
    12: list(STANDARD_LEADS),
    6: ["I", "II", "III", "aVR", "aVL", "aVF"],
    1: ["II"],
}


def _model(store: DatasetStore, arch: str) -> SignalLanguageModel:
    torch.manual_seed(0)
    cfg = FoundationConfig(
        fs=store.info.fs,
        n_samples=store.info.n_samples,
        embed_dim=32,
        ecg=EcgEncoderConfig(arch=arch, width=16, depth=2, patch_size=25, heads=2),
        text=TextEncoderConfig(vocab_size=100, width=32, depth=1, heads=2, max_tokens=16),
        reconstruction=True,
    )
    return SignalLanguageModel(cfg).eval()


def _batch(store: DatasetStore, leads: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    signal = torch.from_numpy(store.read(np.arange(4)))
    mask = torch.zeros(4, 12, dtype=torch.bool)
    mask[:, [STANDARD_LEADS.index(lead) for lead in leads]] = True
    return signal * mask.unsqueeze(-1), mask


@pytest.mark.parametrize("arch", ["resnet", "transformer"])
@pytest.mark.parametrize("n_leads", [12, 6, 1])
def test_shapes_for_lead_subsets(demo_store: DatasetStore, arch: str, n_leads: int) -> None:
    model = _model(demo_store, arch)
    signal, mask = _batch(demo_store, LEAD_SETS[n_leads])
    with torch.no_grad():
        emb = model.embed_ecg(signal, mask)
        features, pooled = model.ecg.encode(signal, mask)
        recon = model.reconstruct_signal(features, signal.shape[-1])
        cropped = model.embed_ecg(signal[..., :800], mask)
    assert emb.shape == (4, 32) and cropped.shape == (4, 32)
    assert torch.allclose(emb.norm(dim=-1), torch.ones(4), atol=1e-5)
    assert pooled.shape == (4, model.ecg.output_dim)
    assert recon.shape == signal.shape
    assert torch.isfinite(emb).all()


@pytest.mark.parametrize("arch", ["resnet", "transformer"])
def test_absent_leads_are_ignored_and_the_mask_matters(demo_store: DatasetStore, arch: str) -> None:
    model = _model(demo_store, arch)
    full = torch.from_numpy(demo_store.read(np.arange(4)))
    signal, mask = _batch(demo_store, LEAD_SETS[1])
    with torch.no_grad():
        single = model.embed_ecg(signal, mask)
        # the other 11 leads carry real signal but are marked absent: the encoder must not see them
        single_with_content = model.embed_ecg(full, mask)
        twelve = model.embed_ecg(full, torch.ones_like(mask))
    torch.testing.assert_close(single, single_with_content)
    assert not torch.allclose(single, twelve, atol=1e-4)
