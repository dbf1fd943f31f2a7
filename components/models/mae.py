"""Masked autoencoding of ECG patches (He et al.'s MAE, on :class:`PatchTransformer`'s 12-lead patches).

The encoder sees the visible patches only (:meth:`PatchTransformer.encode_visible`); a light decoder puts a
learned mask token at every masked position and predicts every patch's values; the loss is the mean squared
error on normalised values, over the masked patches of the present leads.

Target normalisation (MAE's ``norm_pix_loss``, adapted to ECG): within a patch each lead loses its own mean
(baseline offsets differ by lead), and all present leads are divided by one standard deviation pooled over
them. The inter-lead amplitude ratios, which carry the electrical axis, survive; per-lead scaling would
make a 0.1 mV aVL complex look like a 2 mV V2 one. The variance has a floor (``eps``, mV²) so that the
near-flat patches of the TP segment do not turn their noise into unit-size targets.
"""

from __future__ import annotations

import torch
from torch import nn

from components.models.ecg_input import N_LEADS, patchify

__all__ = ["MAEDecoder", "keep_indices", "mae_loss", "normalised_patches", "patchify"]

#: variance floor of the target normalisation, mV² (a standard deviation of about 0.03 mV)
NORM_EPS = 1e-3


def keep_indices(mask: torch.Tensor) -> torch.Tensor:
    """``(b, l)`` bool, True = masked → ``(b, k)`` visible positions, increasing; ``k`` equal in every row."""
    visible = (~mask).sum(1)
    if len(mask) and bool((visible != visible[0]).any()):
        raise ValueError("every row of an MAE mask must hide the same number of patches")
    k = int(visible[0]) if len(mask) else 0
    return mask.to(torch.int8).argsort(dim=1, stable=True)[:, :k]


def _by_lead(patches: torch.Tensor, patch_size: int) -> torch.Tensor:
    """``(b, l, 12 * patch)`` → ``(b, l, 12, patch)``."""
    return patches.reshape(*patches.shape[:-1], N_LEADS, patch_size)


def normalised_patches(
    patches: torch.Tensor, lead_mask: torch.Tensor, patch_size: int, eps: float = NORM_EPS
) -> torch.Tensor:
    """Patch values ``(b, l, 12 * patch)`` normalised as the module docstring says; absent leads are 0."""
    x = _by_lead(patches, patch_size)
    present = lead_mask.to(x.dtype)[:, None, :, None]
    centred = (x - x.mean(-1, keepdim=True)) * present
    n = (present.sum(2, keepdim=True) * patch_size).clamp_min(1.0)
    var = (centred**2).sum((2, 3), keepdim=True) / n
    return (centred / (var + eps).sqrt()).flatten(-2)


def mae_loss(
    prediction: torch.Tensor,
    target_patches: torch.Tensor,
    masked: torch.Tensor,
    lead_mask: torch.Tensor,
    patch_size: int,
) -> torch.Tensor:
    """Mean squared error between ``prediction`` and the normalised ``target_patches`` (both
    ``(b, l, 12 * patch)``), over the ``masked`` ``(b, l)`` patches and the present leads (``lead_mask``
    ``(b, 12)``) only."""
    target = _by_lead(normalised_patches(target_patches, lead_mask, patch_size), patch_size)
    error = (_by_lead(prediction, patch_size) - target) ** 2
    weight = masked.to(error.dtype)[:, :, None] * lead_mask.to(error.dtype)[:, None, :]
    return (error.sum(-1) * weight).sum() / (weight.sum() * patch_size).clamp_min(1.0)


class MAEDecoder(nn.Module):
    """Visible encoder tokens ``(b, k + 1, encoder_width)`` and ``keep`` ``(b, k)`` → every patch's values
    ``(b, l, patch_values)``, ``l`` at most ``n_patches``."""

    def __init__(
        self, encoder_width: int, width: int, depth: int, heads: int, n_patches: int, patch_values: int
    ) -> None:
        super().__init__()
        self.n_patches = n_patches
        self.project = nn.Linear(encoder_width, width)
        self.mask_token = nn.Parameter(torch.randn(1, 1, width) * 0.02)
        self.position = nn.Parameter(torch.randn(1, n_patches + 1, width) * 0.02)
        layer = nn.TransformerEncoderLayer(
            width, heads, 4 * width, 0.0, activation="gelu", batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, patch_values)

    def forward(
        self, visible: torch.Tensor, keep: torch.Tensor, n_patches: int | None = None
    ) -> torch.Tensor:
        """``n_patches``: the record's patch count (default: the decoder's maximum)."""
        n = self.n_patches if n_patches is None else n_patches
        x = self.project(visible)
        b, width = x.shape[0], x.shape[-1]
        tokens = self.mask_token.expand(b, n, width).scatter(
            1, keep.unsqueeze(-1).expand(-1, -1, width), x[:, 1:]
        )
        tokens = torch.cat([x[:, :1], tokens], dim=1) + self.position[:, : n + 1]
        values: torch.Tensor = self.head(self.norm(self.blocks(tokens)))
        return values[:, 1:]
