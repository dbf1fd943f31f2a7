"""A task model's probabilities for records of a store, read at the model's rate.

Records stored longer than the model's input are read whole and cut into windows whose probabilities are
aggregated (:mod:`components.tasks.windows`); records of the model's length are one window.
"""

from __future__ import annotations

import numpy as np

from components.io.canonical import n_windows, split_windows
from components.io.store_view import StoreView
from components.models.task_model import TaskModel
from components.tasks.windows import WindowParams, aggregate


def predict_rows(
    model: TaskModel,
    view: StoreView,
    rows: np.ndarray,
    lead_masks: np.ndarray,
    *,
    windows: WindowParams | None = None,
    chunk: int = 256,
) -> np.ndarray:
    """``(len(rows), n_labels)`` probabilities of manifest ``rows`` (``lead_masks``: the whole store's).

    ``view`` reads at the model's rate and length. With ``windows``, records stored longer than that are
    read whole and their windows aggregated; without, they are cut to the model's length.
    """
    whole = view.whole_records()
    length = model.cfg.n_samples
    if windows is None or whole.n_samples is None or whole.n_samples <= length:
        out = [
            model.predict_proba(view.read(rows[i : i + chunk]), lead_masks[rows[i : i + chunk]], chunk)
            for i in range(0, len(rows), chunk)
        ]
        return np.concatenate(out) if out else np.zeros((0, len(model.cfg.labels)), dtype=np.float32)
    valid = whole.n_valid(rows)
    parts = []
    for i in range(0, len(rows), chunk):
        part, part_valid = rows[i : i + chunk], valid[i : i + chunk]
        signals = whole.read(part)
        counts = np.array([n_windows(int(v), length) for v in part_valid])
        pairs = zip(signals, part_valid, strict=True)
        cut = np.concatenate([split_windows(s, int(v), length) for s, v in pairs])
        proba = model.predict_proba(cut, np.repeat(lead_masks[part], counts, axis=0), chunk)
        parts.append(aggregate(proba, counts, windows.aggregate))
    return np.concatenate(parts) if parts else np.zeros((0, len(model.cfg.labels)), dtype=np.float32)
