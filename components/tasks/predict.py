"""A task model's probabilities for records of a store, read at the model's rate and length."""

from __future__ import annotations

import numpy as np

from components.io.store_view import StoreView
from components.models.task_model import TaskModel


def predict_rows(
    model: TaskModel, view: StoreView, rows: np.ndarray, lead_masks: np.ndarray, chunk: int = 256
) -> np.ndarray:
    """``(len(rows), n_labels)`` probabilities of manifest ``rows`` (``lead_masks``: the whole store's)."""
    out = [
        model.predict_proba(view.read(rows[i : i + chunk]), lead_masks[rows[i : i + chunk]], batch_size=chunk)
        for i in range(0, len(rows), chunk)
    ]
    return np.concatenate(out) if out else np.zeros((0, len(model.cfg.labels)), dtype=np.float32)
