"""The served predictions' way into the prediction log: queued on the request path, written off it.

A request only queues what it answered (:class:`ServedPrediction`, the first window's canonical signal
included); the log's background writer measures the signal-quality features of a whole batch of queued
predictions at once, drops the signal and appends the entries (:mod:`components.predictions`). An
unreachable destination never fails a request: the writer retries, counts (``/metrics``) and spools what it
still holds at shutdown, so nothing a client was answered is lost by a graceful restart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from components.config import Settings
from components.predictions.entry import PredictionEntry
from components.predictions.log import PredictionLog
from components.predictions.params import PredictionLogParams
from components.predictions.writer import BackgroundWriter
from components.quality.monitored import monitored_features
from components.serving.schemas import ModelIdentity
from components.validation.policy import feature_params


@dataclass(frozen=True)
class ServedPrediction:
    """One answered request as the log needs it (the signal is dropped once its features are measured)."""

    at: datetime
    request_id: str
    model: ModelIdentity
    input_hash: str
    site: str | None
    device: str | None
    n_windows: int
    leads_used: tuple[str, ...]
    window: np.ndarray  # (12, model samples) the first window, canonical
    lead_mask: np.ndarray  # (12,)
    n_valid: int  # real samples in ``window``
    fs: int
    labels: tuple[str, ...]
    probabilities: np.ndarray
    decisions: np.ndarray
    features: np.ndarray


def served_entries(items: list[ServedPrediction]) -> list[PredictionEntry]:
    """Log entries of queued predictions, the quality features measured per model rate in one batch."""
    params = feature_params()
    quality: list[dict[str, float]] = [{} for _ in items]
    shapes: dict[tuple[int, int], list[int]] = {}  # (rate, window length) -> the items measured together
    for i, item in enumerate(items):
        shapes.setdefault((item.fs, item.window.shape[-1]), []).append(i)
    for (fs, _), rows in shapes.items():
        values = monitored_features(
            np.stack([items[i].window for i in rows]),
            np.stack([items[i].lead_mask for i in rows]),
            np.array([items[i].n_valid for i in rows]),
            float(fs),
            params,
        )
        for j, i in enumerate(rows):
            quality[i] = {name: float(column[j]) for name, column in values.items()}
    return [_entry(item, q) for item, q in zip(items, quality, strict=True)]


def _entry(item: ServedPrediction, quality: dict[str, float]) -> PredictionEntry:
    return PredictionEntry(
        time=item.at,
        request_id=item.request_id,
        source="served",
        task=item.model.task,
        model_ref=item.model.ref,
        bento=item.model.bento,
        dataset_version=item.model.dataset_version,
        input_hash=item.input_hash,
        site=item.site,
        device=item.device,
        n_windows=item.n_windows,
        leads_used=list(item.leads_used),
        quality=quality,
        labels=list(item.labels),
        probabilities=[float(p) for p in item.probabilities],
        decisions=[bool(d) for d in item.decisions],
        embedding=[float(v) for v in item.features],
    )


def served_log_writer(
    settings: Settings, params: PredictionLogParams, on_failure: Callable[[Exception], None]
) -> BackgroundWriter[ServedPrediction]:
    """The server's writer: ``ECGOPS_PREDICTION_LOG``, else the Bento's ``prediction_log.url``, else
    ``<workspace>/.ecgops/predictions``; unsent entries spool to ``<workspace>/.ecgops/predictions-spool``."""
    options = params.writer_options(spool_dir=settings.state_dir / "predictions-spool")
    log = PredictionLog(params.resolved_url(settings))
    return BackgroundWriter(log, served_entries, options, on_failure=on_failure)
