"""R-peak-aligned crops: views that start a fixed lead-in before a detected R peak.

Peaks come from the quality checks' detector (:func:`components.quality.rpeak_positions`), computed once
for the training rows (:func:`rpeak_table`); crops draw from a passed :class:`torch.Generator` only.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from components.io.store_view import StoreView
from components.quality import SignalFeatureParams, rpeak_positions
from components.validation.policy import feature_params


class AlignedCrops(NamedTuple):
    """``signal`` ``(b, 12, length)``; ``aligned`` ``(b,)`` True where the crop starts at a peak's lead-in
    (else at a random start); ``start`` ``(b,)`` the first sample of each crop in the input."""

    signal: torch.Tensor
    aligned: torch.Tensor
    start: torch.Tensor


def rpeak_table(
    view: StoreView, rows: np.ndarray, fs: int, batch: int = 256, params: SignalFeatureParams | None = None
) -> np.ndarray:
    """``(len(rows), k)`` int32 R-peak sample positions of manifest ``rows`` as ``view`` reads them (at
    ``fs``), increasing, padded with -1. Samples after a record's valid length (zero padding) hold none.
    ``params``: the detector's settings, by default the shipped validation policy's (the quality checks')."""
    if params is None:
        params = feature_params()
    if view.fs is not None and view.fs != fs:
        raise ValueError(f"the view reads at {view.fs} Hz, not {fs} Hz")
    store = view.store
    masks = store.lead_masks()
    valid = store.manifest["n_valid_samples"].to_numpy()
    rows = np.asarray(rows, dtype=np.int64)
    tables = []
    for first in range(0, len(rows), batch):
        chunk = rows[first : first + batch]
        signals = view.read(chunk)
        n_valid = np.minimum(np.round(valid[chunk] * fs / store.info.fs), signals.shape[-1])
        tables.append(rpeak_positions(signals, masks[chunk], fs, params, n_valid.astype(np.int64)))
    width = max((t.shape[1] for t in tables), default=1)
    out = np.full((len(rows), width), -1, dtype=np.int32)
    for first, table in zip(range(0, len(rows), batch), tables, strict=True):
        out[first : first + len(table), : table.shape[1]] = table
    return out


def rpeak_aligned_crop(
    signal: torch.Tensor, peaks: torch.Tensor, length: int, gen: torch.Generator, lead_in: int
) -> AlignedCrops:
    """Crops of ``length`` samples starting ``lead_in`` samples before a random detected R peak.

    ``peaks`` ``(b, k)`` are sample positions padded with -1 (:func:`rpeak_table`). A peak is usable when
    its crop fits in the record; records without one start at a random sample instead.
    """
    b, leads, t = signal.shape
    if not 0 < length <= t:
        raise ValueError(f"crop length {length} does not fit {t} samples")
    device = signal.device
    starts = peaks.to(device=device, dtype=torch.long) - lead_in
    usable = (peaks >= 0).to(device) & (starts >= 0) & (starts + length <= t)
    score = torch.rand(starts.shape, generator=gen, device=device).masked_fill(~usable, -1.0)
    fallback = torch.randint(0, t - length + 1, (b,), generator=gen, device=device)
    aligned = usable.any(1)
    if starts.shape[1]:
        chosen = starts.gather(1, score.argmax(1, keepdim=True)).squeeze(1)
        start = torch.where(aligned, chosen, fallback)
    else:
        start = fallback
    index = (start[:, None] + torch.arange(length, device=device))[:, None, :].expand(b, leads, length)
    return AlignedCrops(signal.gather(2, index), aligned, start)
