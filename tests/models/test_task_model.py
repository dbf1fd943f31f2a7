"""The task-model artifact shared by fine-tuning, evaluation and serving."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from components.io.prepare import prepare
from components.io.sources.ptbxl import iter_records
from components.models.config import EcgEncoderConfig
from components.models.task_model import (
    TaskModel,
    TaskModelConfig,
    load_task_model,
    load_task_model_config,
    save_task_model,
)

ENCODER = EcgEncoderConfig(width=16, depth=2)


def _config(**overrides: object) -> TaskModelConfig:
    fields: dict[str, object] = {
        "task": "demo",
        "labels": ["NORM", "MI"],
        "leads": ["I", "II"],
        "fs": 100,
        "n_samples": 1000,
        "ecg": ENCODER,
    }
    return TaskModelConfig.model_validate(fields | overrides)


@pytest.fixture(scope="module")
def real_batch(samples_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """Four real PTB-XL records from samples/, canonicalised as ingest does."""
    found, _ = iter_records(samples_dir, 100)
    refs = [next(found) for _ in range(4)]
    prepared = [prepare(ref, 100, 1000) for ref in refs]
    signals = np.stack([p.signal for p in prepared])  # type: ignore[union-attr]
    masks = np.stack([p.lead_mask for p in prepared])  # type: ignore[union-attr]
    return signals, masks


Batch = tuple[np.ndarray, np.ndarray]


def test_round_trip_gives_identical_outputs(tmp_path: Path, real_batch: Batch) -> None:
    signals, masks = real_batch
    model = TaskModel(_config(thresholds=[0.3, 0.7])).eval()
    before = model.predict_proba(signals, masks)
    save_task_model(model, tmp_path / "m")
    loaded = load_task_model(tmp_path / "m")
    assert np.array_equal(loaded.predict_proba(signals, masks), before)
    assert load_task_model_config(tmp_path / "m").thresholds == [0.3, 0.7]
    assert not list((tmp_path / "m").glob("*.pt*")), "no pickles in the artifact"


def test_leads_outside_the_task_never_reach_the_model(real_batch: tuple[np.ndarray, np.ndarray]) -> None:
    signals, masks = real_batch
    model = TaskModel(_config()).eval()
    changed = signals.copy()
    changed[:, 2:] += 5.0  # III … V6 are not the task's leads
    assert np.array_equal(model.predict_proba(changed, masks), model.predict_proba(signals, masks))
    changed_lead_ii = signals.copy()
    changed_lead_ii[:, 1] += 5.0
    assert not np.allclose(model.predict_proba(changed_lead_ii, masks), model.predict_proba(signals, masks))


def test_decisions_use_the_stored_thresholds(real_batch: tuple[np.ndarray, np.ndarray]) -> None:
    signals, masks = real_batch
    model = TaskModel(_config(thresholds=[0.0, 1.01])).eval()
    decided = model.decide(model.predict_proba(signals, masks))
    assert decided[:, 0].all() and not decided[:, 1].any()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"leads": ["I", "V7"]}, "unknown leads ['V7']"),
        ({"required_leads": ["V1"]}, "must be among leads"),
        ({"thresholds": [0.5]}, "1 thresholds for 2 labels"),
        ({"labels": []}, "at least 1 item"),
    ],
)
def test_inconsistent_configs_are_refused_clearly(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        _config(**overrides)
