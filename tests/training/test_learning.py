"""The model learns on real records, and its published form (safetensors + JSON) reproduces it exactly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from components.io.store import DatasetStore
from components.models.checkpoint import load_foundation, save_foundation
from components.training.data import PretrainDataModule
from components.training.module import PretrainModule
from components.training.params import PretrainParams
from components.training.stage import build_tokenizer, foundation_config


def _setup(store: DatasetStore, params: PretrainParams) -> tuple[PretrainModule, PretrainDataModule]:
    torch.manual_seed(0)
    tokenizer = build_tokenizer(store, params)
    data = PretrainDataModule(
        store.root, tokenizer, batch_size=params.batch_size, seed=0, limit_train_records=64
    )
    data.setup("fit")
    config = foundation_config(store, params, tokenizer)
    return PretrainModule(config.model_dump(mode="json"), params.model_dump(mode="json")), data


def test_loss_decreases_in_a_few_steps(demo_store: DatasetStore, tiny_params: PretrainParams) -> None:
    objectives = tiny_params.objectives.model_copy(update={"ecg_ecg": 0.5, "masked_reconstruction": 1.0})
    module, data = _setup(demo_store, tiny_params.model_copy(update={"objectives": objectives}))
    batch = data.splits["train"].__getitems__(list(range(16)))
    module.eval()
    with torch.no_grad():
        before = module.losses(batch, None)["clip"].item()
    module.train()
    optimizer = torch.optim.AdamW(module.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    history = []
    for _ in range(30):
        losses = module.losses(batch, gen)  # augmented views, masked signal, two ECG views
        optimizer.zero_grad()
        losses["loss"].backward()
        optimizer.step()
        history.append({k: v.item() for k, v in losses.items()})
    module.eval()
    with torch.no_grad():
        after = module.losses(batch, None)["clip"].item()
    assert set(history[0]) == {"clip", "ecg_ecg", "masked_reconstruction", "loss"}
    assert after < 0.9 * before, (before, after)
    for name in ("loss", "masked_reconstruction", "ecg_ecg"):
        assert np.mean([h[name] for h in history[-5:]]) < np.mean([h[name] for h in history[:5]]), name


@pytest.mark.parametrize("arch", ["resnet", "transformer"])
def test_safetensors_round_trip_gives_identical_outputs(
    demo_store: DatasetStore, tiny_params: PretrainParams, tmp_path: Path, arch: str
) -> None:
    params = tiny_params.model_copy(update={"ecg": tiny_params.ecg.model_copy(update={"arch": arch})})
    module, data = _setup(demo_store, params)
    model = module.model.eval()
    save_foundation(model, data.tokenizer, tmp_path / "fm", extra={"note": "test"})
    assert sorted(p.name for p in (tmp_path / "fm").iterdir()) == [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
    ]
    assert json.loads((tmp_path / "fm" / "config.json").read_text())["meta"] == {"note": "test"}
    loaded, tokenizer = load_foundation(tmp_path / "fm")
    signal = torch.from_numpy(demo_store.read(np.arange(8)))
    mask = torch.from_numpy(demo_store.lead_masks()[:8])
    tokens = torch.from_numpy(tokenizer.encode(["sinusrhythmus normales ekg", "sinus rhythm. normal ecg."]))
    with torch.no_grad():
        assert torch.equal(model.embed_ecg(signal, mask), loaded.embed_ecg(signal, mask))
        assert torch.equal(model.embed_text(tokens), loaded.embed_text(tokens))
    assert torch.equal(model.logit_scale, loaded.logit_scale)
