"""A wav2vec 2.0 style encoder (ECG-FM): strided convolutions to local latents, then a transformer over them.

The latents are the targets of masked contrastive pretraining (:mod:`components.training.wav2vec`); the
transformer sees them with masked steps replaced by a learned embedding and position given by a wide
grouped convolution instead of absolute position embeddings, so any input length works.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from components.models.config import EcgEncoderConfig
from components.models.ecg_input import IN_CHANNELS, lead_input


class ConvLayer(nn.Module):
    """Conv1d → LayerNorm over channels → GELU; ``t`` samples in, ``t // stride`` steps out.

    The input is zero-padded by ``kernel - stride`` samples (split over both ends), so lengths divide
    exactly by the stride. LayerNorm (wav2vec's ``layer_norm`` extractor mode) normalises each step on its
    own: a step's latent depends only on its receptive field, never on the length of the crop.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int):
        super().__init__()
        self.pad = ((kernel - stride) // 2, kernel - stride - (kernel - stride) // 2)
        self.conv = nn.Conv1d(c_in, c_out, kernel, stride=stride, bias=False)
        nn.init.kaiming_normal_(self.conv.weight)
        self.norm = nn.LayerNorm(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(F.pad(x, self.pad))
        return F.gelu(self.norm(x.transpose(1, 2)).transpose(1, 2))


class PositionalConv(nn.Module):
    """Relative position: a grouped convolution with a wide kernel over the sequence, then GELU.

    Even kernels are centred by dropping the last output step (wav2vec's ``SamePad``).
    """

    def __init__(self, d: int, kernel: int, groups: int):
        super().__init__()
        self.conv = nn.Conv1d(d, d, kernel, padding=kernel // 2, groups=groups)
        nn.init.normal_(self.conv.weight, mean=0.0, std=math.sqrt(4.0 / (kernel * d)))
        nn.init.zeros_(self.conv.get_parameter("bias"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(b, l, d)`` → ``(b, l, d)``."""
        out = self.conv(x.transpose(1, 2))[..., : x.shape[1]]
        return F.gelu(out).transpose(1, 2)


class ConvTransformer(nn.Module):
    """``(b, 12, t)`` + lead mask → contextual features ``(b, d, t // stride)``, their time mean ``(b, d)``.

    ``max_samples`` is accepted for the factory's sake: nothing depends on it (position is convolutional).
    """

    def __init__(self, cfg: EcgEncoderConfig, max_samples: int):
        super().__init__()
        d = cfg.width
        channels = [IN_CHANNELS] + [cfg.conv_channels] * len(cfg.conv_strides)
        self.extractor = nn.Sequential(
            *(
                ConvLayer(c_in, c_out, k, s)
                for c_in, c_out, k, s in zip(
                    channels[:-1], channels[1:], cfg.conv_kernels, cfg.conv_strides, strict=True
                )
            )
        )
        self.feature_norm = nn.LayerNorm(cfg.conv_channels)
        self.project = nn.Linear(cfg.conv_channels, d)
        self.mask_embedding = nn.Parameter(torch.empty(d).uniform_())
        self.position = PositionalConv(d, cfg.pos_conv_kernel, cfg.pos_conv_groups)
        self.dropout = nn.Dropout(cfg.dropout)
        layer = nn.TransformerEncoderLayer(
            d, cfg.heads, 4 * d, cfg.dropout, activation="gelu", batch_first=True, norm_first=True
        )
        # dropout on the residual and feed-forward paths, not on the attention weights: over hundreds of
        # latent steps that mask costs more than the attention itself and rules out fused attention kernels
        layer.self_attn.dropout = 0.0
        self.encoder = nn.TransformerEncoder(layer, cfg.depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.feature_dim = d
        self.output_dim = d
        self.stride = math.prod(cfg.conv_strides)
        self.max_samples = max_samples

    def latents(self, signal: torch.Tensor, lead_mask: torch.Tensor) -> torch.Tensor:
        """The unmasked local features ``(b, t // stride, d)``: the contrastive targets."""
        if signal.shape[-1] < self.stride:
            raise ValueError(f"a record needs at least {self.stride} samples, got {signal.shape[-1]}")
        features = self.extractor(lead_input(signal, lead_mask)).transpose(1, 2)
        latents: torch.Tensor = self.project(self.feature_norm(features))
        return latents

    def contextualize(self, latents: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``(b, l, d)`` latents, masked steps (``mask`` ``(b, l)`` True) replaced by the mask embedding,
        → positional convolution → transformer → final LayerNorm: ``(b, l, d)``."""
        x = latents
        if mask is not None:
            x = torch.where(mask.unsqueeze(-1), self.mask_embedding.to(x.dtype), x)
        x = self.dropout(x + self.position(x))
        out: torch.Tensor = self.norm(self.encoder(x))
        return out

    def encode(
        self, signal: torch.Tensor, lead_mask: torch.Tensor, start: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(contextual features (b, d, l), their mean over time (b, d))``, nothing masked; positions are
        relative (convolutional), so a view's ``start`` in its record changes nothing."""
        context = self.contextualize(self.latents(signal, lead_mask))
        return context.transpose(1, 2), context.mean(1)

    def forward(
        self, signal: torch.Tensor, lead_mask: torch.Tensor, start: torch.Tensor | None = None
    ) -> torch.Tensor:
        pooled: torch.Tensor = self.encode(signal, lead_mask)[1]
        return pooled
