"""The traced task forward the server runs is the eager model's — probabilities and pooled features — on
real records and any batch size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from components.io.canonical import canonicalize
from components.io.leads import STANDARD_LEADS
from components.io.wfdb_reader import read_record
from components.models.task_model import TaskModel
from components.serving.runtime import TRACE_TOLERANCE, TraceMismatchError, trace_task_model
from tests.conftest import untrained_task_model

RECORDS = ["00001_lr", "00002_lr", "00003_lr", "00004_lr", "00005_lr"]


def _model(arch: str, leads: list[str]) -> TaskModel:
    return untrained_task_model(arch, leads, task="t")


def _canonical(samples_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    signals, masks = [], []
    for name in RECORDS:
        raw = read_record(samples_dir / "records100" / "00000" / name)
        c = canonicalize(raw.signal.T, raw.fs, raw.sig_names, raw.units, target_fs=100, target_samples=1000)
        signals.append(c.signal)
        masks.append(c.lead_mask)
    masks[2] = masks[2] & np.isin(np.asarray(STANDARD_LEADS), ["I", "II"])  # a two-lead record
    return np.stack(signals), np.stack(masks)


@pytest.mark.parametrize("arch", ["resnet", "transformer"])
@pytest.mark.parametrize("leads", [list(STANDARD_LEADS), ["I"]])
def test_traced_forward_equals_the_eager_model(samples_dir: Path, arch: str, leads: list[str]) -> None:
    model = _model(arch, leads)
    traced = trace_task_model(model)
    signals, masks = _canonical(samples_dir)
    for rows in (slice(0, 1), slice(0, 5), slice(1, 4)):
        x, m = torch.from_numpy(signals[rows]), torch.from_numpy(masks[rows])
        with torch.inference_mode():
            proba, features = (t.numpy() for t in traced(x, m))
        expected, pooled = model.predict_with_features(signals[rows], masks[rows])
        width = model.head.in_features
        assert proba.shape == expected.shape and features.shape == pooled.shape == (len(x), width)
        assert np.abs(proba - expected).max() <= TRACE_TOLERANCE
        assert np.abs(features - pooled).max() <= TRACE_TOLERANCE
        assert np.abs(proba - model.predict_proba(signals[rows], masks[rows])).max() <= TRACE_TOLERANCE


class _BranchingModel(TaskModel):
    """Data-dependent control flow: the kind of model a trace gets wrong."""

    def features(
        self, signal: torch.Tensor, lead_mask: torch.Tensor, start: torch.Tensor | None = None
    ) -> torch.Tensor:
        pooled = super().features(signal, lead_mask, start)
        return pooled * 2 if bool(signal.abs().max() > 1.0) else pooled


def test_a_trace_that_differs_from_the_model_is_refused() -> None:
    base = _model("resnet", list(STANDARD_LEADS))
    model = _BranchingModel(base.cfg).eval()
    model.load_state_dict(base.state_dict())
    with pytest.raises(TraceMismatchError, match=r"differs from the eager one by .*serve.forward: eager"):
        trace_task_model(model)
