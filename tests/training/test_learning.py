"""The model learns on real records, and its published form (safetensors + JSON) reproduces it exactly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from components.io.store import DatasetStore
from components.models.checkpoint import load_foundation, save_foundation
from components.training.data import PretrainDataModule
from components.training.module import PretrainModule
from components.training.params import PretrainParams
from components.training.stage import _training_texts, build_tokenizer, foundation_config


def _setup(store: DatasetStore, params: PretrainParams) -> tuple[PretrainModule, PretrainDataModule]:
    torch.manual_seed(0)
    tokenizer = build_tokenizer(store, params)
    data = PretrainDataModule(
        store.root, params.model_copy(update={"limit_train_records": 64}), tokenizer=tokenizer
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
        before = module.losses(batch, torch.Generator().manual_seed(1), training=False)["clip"].item()
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
        after = module.losses(batch, torch.Generator().manual_seed(1), training=False)["clip"].item()
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


def test_text_only_objective_learns_from_training_patients_reports_only(
    demo_store: DatasetStore, tiny_params: PretrainParams, samples_dir: Path
) -> None:
    csv = samples_dir / "ptbxl_database.csv"
    params = tiny_params.model_copy(
        update={
            "objectives": tiny_params.objectives.model_copy(update={"text_text": 1.0}),
            "text": tiny_params.text.model_copy(update={"extra_reports_csv": csv}),
        }
    )
    pool = set(_training_texts(demo_store, params))
    table = pd.read_csv(csv)
    reports = table["report"].str.strip()
    held_out = table["strat_fold"] >= 9
    only_held_out = set(reports[held_out]) - set(reports[~held_out])
    assert only_held_out and not pool & only_held_out  # validation/test patients' text never gets in

    torch.manual_seed(0)
    tokenizer = build_tokenizer(demo_store, params)
    data = PretrainDataModule(
        demo_store.root,
        params.model_copy(update={"batch_size": 16, "seed": 0, "limit_train_records": 64}),
        tokenizer=tokenizer,
        text_pool=sorted(pool),
    )
    data.setup("fit")
    batch = data.splits["train"].__getitems__(list(range(16)))
    again = data.splits["train"].__getitems__(list(range(16)))
    assert batch["extra_tokens"].shape == (16, params.text.max_tokens)
    assert torch.equal(batch["extra_tokens"], again["extra_tokens"])  # drawn from the batch: resumable
    assert "extra_tokens" not in data.splits["val"].__getitems__([0, 1])
    config = foundation_config(demo_store, params, tokenizer)
    module = PretrainModule(config.model_dump(mode="json"), params.model_dump(mode="json"))
    optimizer = torch.optim.AdamW(module.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    history = []
    for _ in range(12):
        losses = module.losses(batch, gen)
        optimizer.zero_grad()
        losses["loss"].backward()
        optimizer.step()
        history.append(losses["text_text"].item())
    assert np.mean(history[-4:]) < 0.8 * np.mean(history[:4]), history
