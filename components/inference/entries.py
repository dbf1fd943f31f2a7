"""Scored records → prediction-log entries: what the model said and about what, never the signal."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from components.inference.models import DeployedModel
from components.inference.output import leads_used
from components.inference.scoring import Scores
from components.io.prepare import PreparedRecord
from components.predictions.entry import PredictionEntry


@dataclass(frozen=True)
class LogContext:
    """When and how the records were scored."""

    at: datetime
    source: Literal["served", "batch", "shadow"]
    request_ids: Sequence[str]


def log_entries(
    deployed: DeployedModel, records: Sequence[PreparedRecord], scores: Scores, context: LogContext
) -> list[PredictionEntry]:
    """One entry per scored record (its site and device as the drop states them)."""
    labels = list(deployed.model.cfg.labels)
    decisions = deployed.model.decide(scores.proba).tolist()
    probabilities, embeddings = scores.proba.tolist(), scores.features.tolist()
    quality = {name: values.tolist() for name, values in scores.quality.items()}
    use = deployed.model.cfg.lead_use_mask()
    return [
        PredictionEntry(
            time=context.at,
            request_id=context.request_ids[i],
            source=context.source,
            task=str(deployed.info.task),
            model_ref=deployed.ref,
            bento=deployed.bento,
            dataset_version=deployed.dataset_version,
            input_hash=record.content_hash,
            site=record.meta.site,
            device=record.meta.device,
            n_windows=int(scores.n_windows[i]),
            leads_used=leads_used(record.lead_mask, use),
            quality={name: values[i] for name, values in quality.items()},
            labels=labels,
            probabilities=probabilities[i],
            decisions=decisions[i],
            embedding=embeddings[i],
        )
        for i, record in enumerate(records)
    ]
