"""A transformer over signal patches (ViT-1D / ECG-FM style): all leads of a time window form one token."""

from __future__ import annotations

import math

import torch
from torch import nn

from components.models.config import EcgEncoderConfig
from components.models.ecg_input import IN_CHANNELS, lead_input, patchify


class PatchTransformer(nn.Module):
    """``(b, 12, t)`` + lead mask → features ``(b, d, t / patch)`` and the class token ``(b, d)``.

    Positions are absolute: a view that starts ``start`` samples into its record (a training crop) gets
    the positions of the patches it covers, so every position the full record uses is trained even when
    training sees crops only.
    """

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

    def _embed(self, patches: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Patch values ``(b, k, 24 * patch)`` (:func:`patchify`) → tokens ``(b, k, d)`` at ``positions``."""
        return nn.functional.linear(patches, self.embed.weight.flatten(1), self.embed.bias) + positions

    def _encoded(self, tokens: torch.Tensor) -> torch.Tensor:
        """Class token prepended to ``tokens`` ``(b, k, d)``, through the encoder: ``(b, k + 1, d)``."""
        cls = (self.cls + self.position[:, :1]).expand(tokens.shape[0], -1, -1)
        encoded: torch.Tensor = self.norm(self.encoder(torch.cat([cls, tokens], dim=1)))
        return encoded

    def _positions(self, index: torch.Tensor, start: torch.Tensor | None) -> torch.Tensor:
        """Position embeddings of patch ``index`` ``(b, k)`` or ``(k,)`` of views starting at ``start``."""
        table = self.position[0, 1:]
        if start is None:
            return table[index]
        first = torch.div(start, self.patch_size, rounding_mode="floor").view(-1, 1)
        return table[(first + index).clamp(max=len(table) - 1)]

    def _tokens(
        self, signal: torch.Tensor, lead_mask: torch.Tensor, start: torch.Tensor | None = None
    ) -> torch.Tensor:
        patches = patchify(lead_input(signal, lead_mask), self.patch_size)
        index = torch.arange(patches.shape[1], device=patches.device)
        return self._encoded(self._embed(patches, self._positions(index, start)))

    def encode_visible(
        self,
        signal: torch.Tensor,
        lead_mask: torch.Tensor,
        keep: torch.Tensor,
        start: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """MAE's encoder: ``(b, k + 1, d)``, the class token then the ``keep`` ``(b, k)`` patches only.

        The visible patches are selected before they are embedded, so a masked patch's values never
        reach the encoder, and the encoder's cost scales with ``k``, not with the record's length.
        """
        patches = patchify(lead_input(signal, lead_mask), self.patch_size)
        visible = patches.gather(1, keep.unsqueeze(-1).expand(-1, -1, patches.shape[-1]))
        return self._encoded(self._embed(visible, self._positions(keep, start)))

    def encode(
        self, signal: torch.Tensor, lead_mask: torch.Tensor, start: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(patch features (b, d, l), class token (b, d))``."""
        tokens = self._tokens(signal, lead_mask, start)
        return tokens[:, 1:].transpose(1, 2), tokens[:, 0]

    def forward(
        self, signal: torch.Tensor, lead_mask: torch.Tensor, start: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self._tokens(signal, lead_mask, start)[:, 0]
