"""Report encoders: the default small transformer trained from scratch on the tokenizer's ids, and the factory
that also builds Hugging Face ones (:mod:`components.models.text_hf`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import torch
from torch import nn

from components.models.config import TextEncoderConfig


class TextTokenizer(Protocol):
    """What the platform needs of a report tokenizer: the BPE
    :class:`~components.models.tokenizer.ReportTokenizer` of a ``scratch`` encoder, or a Hugging Face
    model's own (:class:`~components.models.text_hf.HFReportTokenizer`)."""

    max_tokens: int

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """``(n, max_tokens)`` int64 token ids, padded."""
        ...


class ScratchTextEncoder(nn.Module):
    """``(b, n_tokens)`` ids (0 = padding) → ``(b, width)``: mean of the non-padding outputs."""

    def __init__(self, cfg: TextEncoderConfig, vocab_size: int, pad_id: int = 0):
        super().__init__()
        self.pad_id = pad_id
        self.token = nn.Embedding(vocab_size, cfg.width, padding_idx=pad_id)
        self.position = nn.Parameter(torch.randn(1, cfg.max_tokens, cfg.width) * 0.02)
        layer = nn.TransformerEncoderLayer(
            cfg.width,
            cfg.heads,
            4 * cfg.width,
            cfg.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, cfg.depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.width)
        self.output_dim = cfg.width

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        keep = tokens != self.pad_id
        x = self.token(tokens) + self.position[:, : tokens.shape[1]]
        x = self.norm(self.encoder(x, src_key_padding_mask=~keep))
        weights = keep.unsqueeze(-1).to(x.dtype)
        return (x * weights).sum(1) / weights.sum(1).clamp_min(1.0)


def build_text_encoder(cfg: TextEncoderConfig) -> nn.Module:
    """The report encoder ``cfg`` describes (an ``hf`` one is loaded offline, its revision checked)."""
    if cfg.kind == "hf":
        from components.models.text_hf import build_hf_encoder

        assert cfg.model is not None  # the config's validator requires it
        return build_hf_encoder(cfg.model, cfg.max_tokens, cfg.frozen, cfg.revision)
    return ScratchTextEncoder(cfg, cfg.vocab_size)
