"""A task model: the foundation ECG encoder plus a multi-label head, and its safetensors + JSON artifact.

The artifact is a directory — ``model.safetensors`` (weights) and ``task_model.json``
(:class:`TaskModelConfig`: task, labels, leads, rate, thresholds, encoder architecture, provenance) —
with no pickles. Training, evaluation and serving all load it with :func:`load_task_model`, so the
model that passed the gate is the model that is served.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from safetensors.torch import load_file, save_file
from torch import nn

from components.io.leads import STANDARD_LEADS
from components.models.config import EcgEncoderConfig, TrainingMode
from components.models.ecg import build_ecg_encoder

TASK_WEIGHTS, TASK_CONFIG = "model.safetensors", "task_model.json"


class TaskModelConfig(BaseModel):
    """Everything needed to rebuild a task model and apply it exactly as it was evaluated."""

    model_config = ConfigDict(extra="forbid")

    format_version: int = 1
    task: str
    labels: list[str] = Field(min_length=1)
    leads: list[str] = Field(min_length=1, description="standard leads the model reads; the rest are masked")
    required_leads: list[str] = Field(
        default_factory=list, description="leads a request must carry (empty: all of `leads`)"
    )
    fs: int = Field(gt=0)
    n_samples: int = Field(gt=0)
    thresholds: list[float] = Field(default_factory=list, description="per label; empty: 0.5 each")
    ecg: EcgEncoderConfig
    mode: TrainingMode = "finetune"
    meta: dict[str, Any] = Field(default_factory=dict, description="provenance: foundation, dataset, run")

    @model_validator(mode="after")
    def _consistent(self) -> TaskModelConfig:
        unknown = sorted(set(self.leads) - set(STANDARD_LEADS))
        if unknown:
            raise ValueError(f"unknown leads {unknown}; standard leads are {list(STANDARD_LEADS)}")
        if not set(self.required_leads) <= set(self.leads):
            raise ValueError(f"required_leads {self.required_leads} must be among leads {self.leads}")
        if self.thresholds and len(self.thresholds) != len(self.labels):
            raise ValueError(f"{len(self.thresholds)} thresholds for {len(self.labels)} labels")
        return self

    @property
    def needed_leads(self) -> list[str]:
        """Leads an input must carry for the model to be applied."""
        return self.required_leads or self.leads

    @property
    def decision_thresholds(self) -> np.ndarray:
        return np.asarray(self.thresholds or [0.5] * len(self.labels), dtype=np.float64)

    def lead_use_mask(self) -> np.ndarray:
        """``(12,)`` bool: which standard leads the model reads."""
        return np.isin(np.asarray(STANDARD_LEADS), self.leads)


class TaskModel(nn.Module):
    """ECG encoder → linear multi-label head; leads outside the task's lead set are always masked out."""

    lead_use: torch.Tensor

    def __init__(self, cfg: TaskModelConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = build_ecg_encoder(cfg.ecg, cfg.n_samples)
        self.head = nn.Linear(self.encoder.output_dim, len(cfg.labels))
        self.register_buffer("lead_use", torch.from_numpy(cfg.lead_use_mask()), persistent=False)

    def effective_mask(self, lead_mask: torch.Tensor) -> torch.Tensor:
        """The presence mask restricted to the task's leads."""
        return lead_mask.bool() & self.lead_use

    def features(
        self, signal: torch.Tensor, lead_mask: torch.Tensor, start: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.encoder(signal, self.effective_mask(lead_mask), start)

    def forward(
        self, signal: torch.Tensor, lead_mask: torch.Tensor, start: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``(b, 12, t)`` mV + ``(b, 12)`` presence → ``(b, n_labels)`` logits; ``start``: where a training
        crop starts in its records (whole records start at 0)."""
        return self.head(self.features(signal, lead_mask, start))

    def predict_proba(self, signal: np.ndarray, lead_mask: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Per-label probabilities ``(n, n_labels)`` float32 for canonical signals, in eval mode."""
        return self.predict_with_features(signal, lead_mask, batch_size, features=False)[0]

    @torch.inference_mode()
    def predict_with_features(
        self, signal: np.ndarray, lead_mask: np.ndarray, batch_size: int = 256, *, features: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities ``(n, n_labels)`` and the pooled features the head reads ``(n, width)`` (empty
        ``(n, 0)`` with ``features=False``), from one forward in eval mode."""
        was_training = self.training
        self.eval()
        device = self.head.weight.device
        proba, pooled = [], []
        for start in range(0, len(signal), batch_size):
            stop = start + batch_size
            x = torch.as_tensor(np.asarray(signal[start:stop], dtype=np.float32), device=device)
            m = torch.as_tensor(np.asarray(lead_mask[start:stop], dtype=bool), device=device)
            f = self.features(x, m)
            proba.append(torch.sigmoid(self.head(f)).float().cpu().numpy())
            pooled.append(f.float().cpu().numpy() if features else np.zeros((len(x), 0), np.float32))
        self.train(was_training)
        if not proba:
            width = self.head.in_features if features else 0
            return np.zeros((0, len(self.cfg.labels)), np.float32), np.zeros((0, width), np.float32)
        return np.concatenate(proba), np.concatenate(pooled)

    def decide(self, proba: np.ndarray) -> np.ndarray:
        """Decisions at the stored (validation-tuned) thresholds."""
        return proba >= self.cfg.decision_thresholds[None, :]


def save_task_model(model: TaskModel, directory: Path) -> Path:
    """Write ``directory/model.safetensors`` and ``directory/task_model.json``."""
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(directory / TASK_WEIGHTS), metadata={"format": "pt"})
    (directory / TASK_CONFIG).write_text(model.cfg.model_dump_json(indent=2) + "\n")
    return directory


def load_task_model_config(directory: Path) -> TaskModelConfig:
    return TaskModelConfig.model_validate(json.loads((directory / TASK_CONFIG).read_text()))


def load_task_model(directory: Path, device: str | torch.device = "cpu") -> TaskModel:
    """Rebuild a task model (eval mode) from a directory :func:`save_task_model` wrote."""
    model = TaskModel(load_task_model_config(directory))
    model.load_state_dict(load_file(str(directory / TASK_WEIGHTS), device=str(device)))
    return model.to(device).eval()
