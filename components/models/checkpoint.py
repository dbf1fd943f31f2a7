"""The published foundation model: a directory with safetensors weights, a JSON config and the tokenizer.

``model.safetensors`` (weights), ``config.json`` (:class:`FoundationConfig`), ``tokenizer.json``
(the report tokenizer) — no pickles anywhere.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from components.models.config import FoundationConfig
from components.models.foundation import SignalLanguageModel
from components.models.tokenizer import ReportTokenizer

WEIGHTS, CONFIG, TOKENIZER = "model.safetensors", "config.json", "tokenizer.json"


def save_foundation(
    model: SignalLanguageModel, tokenizer: ReportTokenizer, directory: Path, extra: dict | None = None
) -> Path:
    """Write the model directory; ``extra`` (e.g. the training run) lands in ``config.json`` ``meta``."""
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(directory / WEIGHTS), metadata={"format": "pt"})
    payload = {"model": model.cfg.model_dump(mode="json"), "meta": extra or {}}
    (directory / CONFIG).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    (directory / TOKENIZER).write_text(tokenizer.to_json())
    return directory


def load_config(directory: Path) -> FoundationConfig:
    return FoundationConfig.model_validate(json.loads((directory / CONFIG).read_text())["model"])


def load_foundation(
    directory: Path, device: str | torch.device = "cpu"
) -> tuple[SignalLanguageModel, ReportTokenizer]:
    """Rebuild the model (in eval mode) and its tokenizer from a directory :func:`save_foundation` wrote."""
    cfg = load_config(directory)
    model = SignalLanguageModel(cfg)
    model.load_state_dict(load_file(str(directory / WEIGHTS), device=str(device)))
    tokenizer = ReportTokenizer.from_json((directory / TOKENIZER).read_text(), cfg.text.max_tokens)
    return model.to(device).eval(), tokenizer
