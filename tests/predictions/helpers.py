"""Prediction entries as a served PTB-XL superclass model would log them (no signal needed)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import numpy as np

from components.predictions.entry import PredictionEntry

LABELS = ["NORM", "MI", "STTC", "CD", "HYP"]
TASK = "ptbxl-superdiagnostic"
T0 = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)


def entry(time: datetime = T0, seed: int = 0, **fields: Any) -> PredictionEntry:
    """One entry at ``time`` with sigmoid probabilities, decisions at 0.5 and a pooled embedding."""
    rng = np.random.default_rng(seed)
    probabilities = 1.0 / (1.0 + np.exp(-rng.normal(0.0, 2.0, len(LABELS))))
    values: dict[str, Any] = {
        "time": time,
        "request_id": uuid.uuid4().hex,
        "source": "served",
        "task": TASK,
        "model_ref": f"{TASK}@3",
        "bento": "ecgops-ptbxl-superdiagnostic:abc123",
        "dataset_version": "9f1c2e",
        "input_hash": uuid.uuid4().hex,
        "site": "site-a",
        "device": "MAC5500",
        "n_windows": 1,
        "leads_used": ["I", "II", "V1"],
        "quality": {"snr_db": float(rng.normal(20, 3)), "baseline_wander": float(rng.uniform())},
        "labels": LABELS,
        "probabilities": probabilities.tolist(),
        "decisions": (probabilities >= 0.5).tolist(),
        "embedding": rng.normal(size=16).astype(np.float32).tolist(),
    }
    return PredictionEntry(**(values | fields))
