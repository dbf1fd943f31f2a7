"""The loaded models a served Bento answers with: its task model(s) and the foundation model.

:class:`ModelRuntime` is one task model (a family Bento holds one per member), :class:`FoundationRuntime`
the foundation model behind ``/embed`` and ``/zero_shot``. Both are loaded with the shared loaders
(:func:`~components.models.task_model.load_task_model`,
:func:`~components.models.checkpoint.load_foundation`), so the served model is the gated one. The
service, the tests and the benchmark all call these methods; nothing here knows about HTTP. A task
forward returns the probabilities and the pooled features the head read (one embedding per prediction
at no extra forward).

The batched task forward runs traced (``serve.forward: traced``, TorchScript): the whole graph then runs
in C++ without the GIL, so the event loop parsing requests and the forward thread use two cores. An eager
forward takes the GIL back between operators and waits behind request parsing each time, which cost ~20 %
of the served throughput in ``benchmarks/serving.py``. ``torch.jit.trace`` is deprecated in favour of
``torch.compile``/``torch.export``, but on CPU those still run Python between kernels (the same GIL
contention) and compile for ~30 s per batch shape; the trace is checked against the eager model at
start-up and the server refuses to start if they differ.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from components.io.leads import STANDARD_LEADS
from components.models.checkpoint import load_foundation
from components.models.task_model import TaskModel, load_task_model
from components.models.text_errors import NoTextSpaceError
from components.serving.inputs import InputSpec
from components.tasks.windows import aggregate
from components.training.evaluate import embed_texts

#: largest difference allowed between the traced and the eager task model at start-up (both outputs)
TRACE_TOLERANCE = 1e-6


class TraceMismatchError(RuntimeError):
    """The traced task model does not compute what the eager one does (serve with ``forward: eager``)."""


class ProbabilitiesAndFeatures(nn.Module):
    """A task model's forward as served: ``(b, 12, t)`` + ``(b, 12)`` → per-label probabilities ``(b, L)``
    and the pooled features the head reads ``(b, width)`` (what ``TaskModel.predict_with_features``
    computes), so one forward gives both."""

    def __init__(self, model: TaskModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, signal: torch.Tensor, lead_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.model.features(signal, lead_mask)
        return torch.sigmoid(self.model.head(features)), features


def trace_task_model(model: TaskModel) -> torch.jit.ScriptModule:
    """:class:`ProbabilitiesAndFeatures` of the task model traced with TorchScript (one module returning
    both), checked against the eager model on a batch size and lead subset other than the traced ones."""
    model.eval()
    served = ProbabilitiesAndFeatures(model).eval()
    device = model.head.weight.device
    example = (
        torch.zeros(2, 12, model.cfg.n_samples, device=device),
        torch.ones(2, 12, dtype=torch.bool, device=device),
    )
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.trace", category=DeprecationWarning)
        traced = torch.jit.trace(served, example, check_trace=False)
    generator = torch.Generator().manual_seed(0)
    signal = torch.randn(3, 12, model.cfg.n_samples, generator=generator) * 0.5
    mask = torch.ones(3, 12, dtype=torch.bool)
    mask[1, 6:] = False  # a reduced-lead record
    proba, features = model.predict_with_features(signal.numpy(), mask.numpy())
    with torch.inference_mode():
        got = [t.float().cpu().numpy() for t in traced(signal.to(device), mask.to(device))]
    difference = max(float(np.abs(got[0] - proba).max()), float(np.abs(got[1] - features).max()))
    if not difference <= TRACE_TOLERANCE:
        raise TraceMismatchError(
            f"the traced task model differs from the eager one by {difference:.3g} (tolerance "
            f"{TRACE_TOLERANCE:g}); serve it with `serve.forward: eager`"
        )
    return traced


def combine_windows(
    rows: Sequence[tuple[np.ndarray, ...]], how: Literal["mean", "max"]
) -> tuple[np.ndarray, np.ndarray]:
    """One record's probabilities ``(n_labels,)`` — its windows' aggregated by ``how`` (``windows.aggregate``)
    — and pooled features ``(width,)`` — its windows' averaged — from the ``(probabilities, features)`` rows
    :meth:`ModelRuntime.predict_batch` gave each window."""
    proba = np.stack([row[0] for row in rows])
    features = np.stack([row[1] for row in rows])
    return aggregate(proba, np.array([len(rows)]), how)[0], features.mean(axis=0)


class ModelRuntime:
    """A task model in eval mode on one device, its batched forward (traced or eager) and its input spec."""

    def __init__(
        self, task_dir: Path, *, device: str = "cpu", forward: Literal["traced", "eager"] = "traced"
    ) -> None:
        self.device = torch.device(device)
        self.task = load_task_model(task_dir, device=self.device)
        self.traced = trace_task_model(self.task) if forward == "traced" else None
        cfg = self.task.cfg
        self.labels: list[str] = list(cfg.labels)
        self.thresholds: np.ndarray = cfg.decision_thresholds
        self.task_spec = InputSpec(
            what=f"task {cfg.task}",
            fs=cfg.fs,
            n_samples=cfg.n_samples,
            leads=tuple(cfg.leads),
            needed_leads=tuple(cfg.needed_leads),
        )

    def predict_batch(self, signals: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(b, 12, t)`` canonical signals + ``(b, 12)`` masks → ``(b, n_labels)`` probabilities and the
        ``(b, width)`` pooled features the head read, from one forward."""
        if self.traced is None:
            return self.task.predict_with_features(signals, masks, batch_size=max(1, len(signals)))
        with torch.inference_mode():
            x = torch.as_tensor(np.asarray(signals, dtype=np.float32), device=self.device)
            m = torch.as_tensor(np.asarray(masks, dtype=bool), device=self.device)
            proba, features = self.traced(x, m)
            return proba.float().cpu().numpy(), features.float().cpu().numpy()

    def warm_up(self) -> None:
        """One forward on zeros, so the first request does not pay for lazy set-up."""
        spec = self.task_spec
        mask = np.isin(np.asarray(STANDARD_LEADS), spec.leads)[None]
        self.predict_batch(np.zeros((1, 12, spec.n_samples), dtype=np.float32), mask)


class FoundationRuntime:
    """A foundation model (and its text side, where its recipe learned one) for embeddings and zero-shot."""

    def __init__(self, foundation_dir: Path, *, device: str = "cpu") -> None:
        self.device = torch.device(device)
        self.foundation, self.tokenizer = load_foundation(foundation_dir, device=self.device)
        fcfg = self.foundation.cfg
        self.spec = InputSpec(
            what="the foundation model",
            fs=fcfg.fs,
            n_samples=fcfg.n_samples,
            leads=STANDARD_LEADS,
            needed_leads=(),
        )

    @property
    def has_text_space(self) -> bool:
        return bool(self.foundation.has_text_space)

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
        learned temperature (:class:`NoTextSpaceError` for a foundation model without a text space)."""
        if self.tokenizer is None:
            raise NoTextSpaceError("this foundation model learned no text space: no zero-shot")
        ecg = self.embed(signal, mask)
        texts = embed_texts(self.foundation, self.tokenizer, list(prompts))
        similarity = (texts @ ecg).astype(np.float64)
        logits = similarity / self.foundation.temperature
        weights = np.exp(logits - logits.max())
        return similarity, weights / weights.sum()

    def warm_up(self) -> None:
        """One embedding of zeros, so the first request does not pay for lazy set-up."""
        self.embed(np.zeros((12, self.spec.n_samples), dtype=np.float32), np.ones(12, dtype=bool))
