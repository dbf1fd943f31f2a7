"""A 1D ResNet in the xresnet1d style: three-convolution stem, residual stages that halve the time axis."""

from __future__ import annotations

import torch
from torch import nn

from components.models.config import EcgEncoderConfig
from components.models.ecg_input import IN_CHANNELS, lead_input


def _conv_bn(
    c_in: int, c_out: int, kernel: int, stride: int = 1, act: bool = True, zero_bn: bool = False
) -> nn.Sequential:
    norm = nn.BatchNorm1d(c_out)
    if zero_bn:
        nn.init.zeros_(norm.weight)
    layers: list[nn.Module] = [
        nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
        norm,
    ]
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class ResBlock(nn.Module):
    """Two convolutions with an identity (or pooled 1×1) shortcut; the last BatchNorm starts at zero."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int):
        super().__init__()
        self.convs = nn.Sequential(
            _conv_bn(c_in, c_out, kernel, stride=stride),
            _conv_bn(c_out, c_out, kernel, act=False, zero_bn=True),
        )
        shortcut: list[nn.Module] = []
        if stride != 1:
            shortcut.append(nn.AvgPool1d(stride, ceil_mode=True))
        if c_in != c_out:
            shortcut += [nn.Conv1d(c_in, c_out, 1, bias=False), nn.BatchNorm1d(c_out)]
        self.shortcut = nn.Sequential(*shortcut)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.convs(x) + self.shortcut(x))


class ResNet1d(nn.Module):
    """``(b, 12, t)`` + lead mask → features ``(b, c, t / stride)`` and a pooled vector ``(b, 2c)``."""

    def __init__(self, cfg: EcgEncoderConfig):
        super().__init__()
        k = cfg.kernel_size | 1
        w = cfg.width
        self.stem = nn.Sequential(
            _conv_bn(IN_CHANNELS, w // 2, k, stride=2),
            _conv_bn(w // 2, w // 2, k),
            _conv_bn(w // 2, w, k),
            nn.MaxPool1d(3, stride=2, padding=1),
        )
        widths = [w * 2 ** min(i, 2) for i in range(cfg.depth)]
        blocks: list[nn.Module] = []
        c_in = w
        for i, c_out in enumerate(widths):
            for j in range(cfg.blocks_per_stage):
                blocks.append(ResBlock(c_in, c_out, k, stride=2 if (i > 0 and j == 0) else 1))
                c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.dropout = nn.Dropout(cfg.dropout)
        self.feature_dim = c_in
        self.output_dim = 2 * c_in
        self.stride = 4 * 2 ** (cfg.depth - 1)

    def features(self, signal: torch.Tensor, lead_mask: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(lead_input(signal, lead_mask)))

    def pool(self, features: torch.Tensor) -> torch.Tensor:
        return self.dropout(torch.cat([features.mean(-1), features.amax(-1)], dim=1))

    def encode(
        self, signal: torch.Tensor, lead_mask: torch.Tensor, start: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(features (b, c, l), pooled (b, 2c))``; convolutions have no absolute positions, so a view's
        ``start`` in its record changes nothing."""
        features = self.features(signal, lead_mask)
        return features, self.pool(features)

    def forward(
        self, signal: torch.Tensor, lead_mask: torch.Tensor, start: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.pool(self.features(signal, lead_mask))
