"""The loaded models a served Bento answers with: the task model and its foundation model.

Both are loaded with the shared loaders (:func:`~components.models.task_model.load_task_model`,
:func:`~components.models.checkpoint.load_foundation`), so the served model is the gated one. The
service, the tests and the benchmark all call these methods; nothing here knows about HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from components.io.leads import STANDARD_LEADS
from components.models.checkpoint import load_foundation
from components.models.task_model import load_task_model
from components.serving.inputs import InputSpec
from components.training.evaluate import embed_texts


class ModelRuntime:
    """Task model + foundation model in eval mode on one device, with the input specs of each."""

    def __init__(self, task_dir: Path, foundation_dir: Path, *, device: str = "cpu") -> None:
        self.device = torch.device(device)
        self.task = load_task_model(task_dir, device=self.device)
        self.foundation, self.tokenizer = load_foundation(foundation_dir, device=self.device)
        cfg = self.task.cfg
        self.task_spec = InputSpec(
            what=f"task {cfg.task}",
            fs=cfg.fs,
            n_samples=cfg.n_samples,
            leads=tuple(cfg.leads),
            needed_leads=tuple(cfg.needed_leads),
        )
        fcfg = self.foundation.cfg
        self.foundation_spec = InputSpec(
            what="the foundation model",
            fs=fcfg.fs,
            n_samples=fcfg.n_samples,
            leads=STANDARD_LEADS,
            needed_leads=(),
        )

    @property
    def labels(self) -> list[str]:
        return list(self.task.cfg.labels)

    @property
    def thresholds(self) -> np.ndarray:
        return self.task.cfg.decision_thresholds

    def predict_batch(self, signals: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """``(b, 12, t)`` canonical signals + ``(b, 12)`` masks → ``(b, n_labels)`` probabilities."""
        return self.task.predict_proba(signals, masks, batch_size=max(1, len(signals)))

    @torch.inference_mode()
    def embed(self, signal: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Unit-norm foundation embedding ``(embed_dim,)`` of one canonical signal."""
        x = torch.as_tensor(signal[None], dtype=torch.float32, device=self.device)
        m = torch.as_tensor(mask[None], dtype=torch.bool, device=self.device)
        return self.foundation.embed_ecg(x, m)[0].float().cpu().numpy()

    @torch.inference_mode()
    def zero_shot(
        self, signal: np.ndarray, mask: np.ndarray, prompts: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Cosine similarity of one ECG with each prompt, and the softmax over prompts at the model's
        learned temperature."""
        ecg = self.embed(signal, mask)
        texts = embed_texts(self.foundation, self.tokenizer, list(prompts))
        similarity = (texts @ ecg).astype(np.float64)
        logits = similarity / self.foundation.temperature
        weights = np.exp(logits - logits.max())
        return similarity, weights / weights.sum()

    def warm_up(self) -> None:
        """One forward of each model on zeros, so the first request does not pay for lazy set-up."""
        spec = self.task_spec
        mask = np.isin(np.asarray(STANDARD_LEADS), spec.leads)[None]
        self.predict_batch(np.zeros((1, 12, spec.n_samples), dtype=np.float32), mask)
        fspec = self.foundation_spec
        self.embed(np.zeros((12, fspec.n_samples), dtype=np.float32), np.ones(12, dtype=bool))
