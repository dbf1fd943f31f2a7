"""How an ECG enters an encoder: absent leads zeroed, the lead-presence mask appended as channels."""

from __future__ import annotations

import torch

N_LEADS = 12
IN_CHANNELS = 2 * N_LEADS


def lead_input(signal: torch.Tensor, lead_mask: torch.Tensor) -> torch.Tensor:
    """``(b, 12, t)`` mV and ``(b, 12)`` bool → ``(b, 24, t)``: masked signal, then the mask per sample.

    Telling the encoder which leads are present lets one set of weights serve 12-lead, reduced-lead
    and single-lead records; a zero lead is otherwise indistinguishable from a flat one.
    """
    mask = lead_mask.to(signal.dtype).unsqueeze(-1)
    return torch.cat([signal * mask, mask.expand_as(signal)], dim=1)


def patchify(x: torch.Tensor, patch_size: int) -> torch.Tensor:
    """``(b, c, t)`` → ``(b, ceil(t / patch_size), c * patch_size)``: consecutive windows, the end padded
    with zeros. A patch's values are channel-major: channel ``c`` holds values ``c * patch_size`` to
    ``(c + 1) * patch_size - 1``.
    """
    b, c, t = x.shape
    x = torch.nn.functional.pad(x, (0, (-t) % patch_size))
    return x.view(b, c, -1, patch_size).transpose(1, 2).reshape(b, -1, c * patch_size)
