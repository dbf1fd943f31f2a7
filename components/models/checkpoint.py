"""The published foundation model: a directory with safetensors weights, a JSON config and the tokenizer.

``model.safetensors`` (weights), ``config.json`` (:class:`FoundationConfig`), and the report tokenizer —
no pickles anywhere. By report encoder:

- ``scratch``: ``tokenizer.json`` (the BPE tokenizer learned from the reports);
- ``hf``, fine-tuned: ``text_encoder/``, the trained sentence-transformers model with its tokenizer
  (safetensors + JSON); its weights are not repeated in ``model.safetensors``;
- ``hf``, frozen: nothing more: ``config.json`` names the model (``text.model``) and the SHA-256 of its files
  (``text.revision``); loading finds it offline and refuses a model whose files differ;
- none (a recipe that learned no text space): nothing more, and no tokenizer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from components.models.config import FoundationConfig
from components.models.foundation import SignalLanguageModel
from components.models.text import TextTokenizer, build_text_encoder
from components.models.tokenizer import ReportTokenizer

WEIGHTS, CONFIG, TOKENIZER, TEXT_ENCODER = (
    "model.safetensors",
    "config.json",
    "tokenizer.json",
    "text_encoder",
)
#: state-dict prefix of a fine-tuned Hugging Face encoder's weights (kept in ``text_encoder/``)
_HF_WEIGHTS = "text.model."


def save_foundation(
    model: SignalLanguageModel, tokenizer: TextTokenizer | None, directory: Path, extra: dict | None = None
) -> Path:
    """Write the model directory; ``extra`` (e.g. the training run) lands in ``config.json`` ``meta``.

    ``tokenizer`` is the model's report tokenizer (:class:`ReportTokenizer` for a ``scratch`` encoder,
    None for a model without a text space).
    """
    directory.mkdir(parents=True, exist_ok=True)
    text = model.cfg.text
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    if text is not None and text.kind == "hf" and not text.frozen:
        from components.models.text_hf import save_trained_encoder

        save_trained_encoder(model.text, directory / TEXT_ENCODER)  # type: ignore[arg-type]
        state = {k: v for k, v in state.items() if not k.startswith(_HF_WEIGHTS)}
    save_file(state, str(directory / WEIGHTS), metadata={"format": "pt"})
    payload = {"model": model.cfg.model_dump(mode="json"), "meta": extra or {}}
    (directory / CONFIG).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    if text is not None and text.kind == "scratch":
        assert isinstance(tokenizer, ReportTokenizer)
        (directory / TOKENIZER).write_text(tokenizer.to_json())
    return directory


def load_config(directory: Path) -> FoundationConfig:
    return FoundationConfig.model_validate(json.loads((directory / CONFIG).read_text())["model"])


def foundation_meta(directory: Path) -> dict[str, Any]:
    """What a saved foundation model says of its training (``meta`` of its ``config.json``): data, run,
    epochs, the recipe with the sha256 of its resolved configuration, and ``data``, what the data side did
    (the batch plan with its merged or padded groups, patient partners, records without R-peaks)."""
    meta: dict[str, Any] = json.loads((directory / CONFIG).read_text()).get("meta") or {}
    return meta


def load_foundation(
    directory: Path, device: str | torch.device = "cpu"
) -> tuple[SignalLanguageModel, TextTokenizer | None]:
    """Rebuild the model (in eval mode) and its report tokenizer from a directory :func:`save_foundation`
    wrote. The tokenizer has :class:`ReportTokenizer`'s interface (``encode(texts)`` → token ids); it is
    None for a model without a text space."""
    cfg = load_config(directory)
    weights = load_file(str(directory / WEIGHTS), device=str(device))
    tokenizer: TextTokenizer | None
    if cfg.text is None:
        model, tokenizer = SignalLanguageModel(cfg), None
    elif cfg.text.kind == "hf":
        from components.models.text_hf import HFTextEncoder, load_trained_encoder

        if cfg.text.frozen:
            text = build_text_encoder(cfg.text)
            assert isinstance(text, HFTextEncoder)
        else:
            text = load_trained_encoder(directory / TEXT_ENCODER, cfg.text.max_tokens)
        model = SignalLanguageModel(cfg, text_encoder=text)
        tokenizer = text.tokenizer
        weights |= {k: v for k, v in model.state_dict().items() if k.startswith(_HF_WEIGHTS)}
    else:
        model = SignalLanguageModel(cfg)
        tokenizer = ReportTokenizer.from_json((directory / TOKENIZER).read_text(), cfg.text.max_tokens)
    model.load_state_dict(weights)
    return model.to(device).eval(), tokenizer
