"""A transformer over signal patches (ViT-1D / ECG-FM style): all leads of a time window form one token."""

from __future__ import annotations

import math

import torch
from torch import nn

from components.models.config import EcgEncoderConfig
from components.models.ecg_input import IN_CHANNELS, lead_input


class PatchTransformer(nn.Module):
    """``(b, 12, t)`` + lead mask → features ``(b, d, t / patch)`` and the class token ``(b, d)``."""

    def __init__(self, cfg: EcgEncoderConfig, max_samples: int):
        super().__init__()
        d = cfg.width
        self.patch_size = cfg.patch_size
        self.embed = nn.Conv1d(IN_CHANNELS, d, cfg.patch_size, stride=cfg.patch_size)
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.position = nn.Parameter(torch.randn(1, math.ceil(max_samples / cfg.patch_size) + 1, d) * 0.02)
        layer = nn.TransformerEncoderLayer(
            d, cfg.heads, 4 * d, cfg.dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, cfg.depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.feature_dim = d
        self.output_dim = d
        self.stride = cfg.patch_size

    def _tokens(self, signal: torch.Tensor, lead_mask: torch.Tensor) -> torch.Tensor:
        x = lead_input(signal, lead_mask)
        pad = (-x.shape[-1]) % self.patch_size
        x = nn.functional.pad(x, (0, pad))
        tokens = self.embed(x).transpose(1, 2)
        tokens = torch.cat([self.cls.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        tokens = tokens + self.position[:, : tokens.shape[1]]
        return self.norm(self.encoder(tokens))

    def encode(self, signal: torch.Tensor, lead_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(patch features (b, d, l), class token (b, d))``."""
        tokens = self._tokens(signal, lead_mask)
        return tokens[:, 1:].transpose(1, 2), tokens[:, 0]

    def forward(self, signal: torch.Tensor, lead_mask: torch.Tensor) -> torch.Tensor:
        return self._tokens(signal, lead_mask)[:, 0]
