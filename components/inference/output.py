"""What batch inference writes: one Parquet table of predictions, one of quarantined records, a summary.

The output folder is a local path or any fsspec URL. Each prediction row carries the model, its Bento,
the dataset version it was trained on and the input's content hash (the hash ingest gives the same
record), one ``proba.<label>`` and one ``positive.<label>`` column per label.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from components.inference.models import DeployedModel
from components.inference.scoring import Scores
from components.io.leads import STANDARD_LEADS
from components.io.prepare import PreparedRecord, RejectedRecord

PREDICTIONS = "predictions.parquet"
QUARANTINE = "quarantine.parquet"
SUMMARY = "summary.json"


def leads_used(mask: np.ndarray, use: np.ndarray) -> list[str]:
    """The standard leads a record carried (``mask``) that the model reads (``use``, its lead-use mask)."""
    return [lead for lead, present, read in zip(STANDARD_LEADS, mask, use, strict=True) if present and read]


def predictions_table(
    deployed: DeployedModel, records: Sequence[PreparedRecord], scores: Scores, at: datetime
) -> pa.Table:
    """One chunk's prediction rows."""
    labels = list(deployed.model.cfg.labels)
    decisions = deployed.model.decide(scores.proba)
    use = deployed.model.cfg.lead_use_mask()
    n = len(records)
    columns: dict[str, Any] = {
        "record": [r.ref.source_record for r in records],
        "input_hash": [r.content_hash for r in records],
        "site": [r.meta.site for r in records],
        "device": [r.meta.device for r in records],
        "task": [deployed.info.task] * n,
        "model_ref": [deployed.ref] * n,
        "bento": [deployed.bento] * n,
        "dataset_version": [deployed.dataset_version] * n,
        "predicted_at": pa.array([at] * n, pa.timestamp("us", tz="UTC")),
        "n_windows": pa.array(scores.n_windows, pa.int32()),
        "leads_used": [leads_used(r.lead_mask, use) for r in records],
        "positive_labels": [[lab for lab, d in zip(labels, row, strict=True) if d] for row in decisions],
    }
    for j, label in enumerate(labels):
        columns[f"proba.{label}"] = pa.array(scores.proba[:, j], pa.float32())
    for j, label in enumerate(labels):
        columns[f"positive.{label}"] = pa.array(decisions[:, j], pa.bool_())
    return pa.table(columns)


def quarantine_table(rejected: Sequence[RejectedRecord]) -> pa.Table:
    """The records that could not be scored, each with its reason."""
    return pa.table(
        {
            "record": pa.array([r.ref.source_record for r in rejected], pa.string()),
            "reason": pa.array([r.reason for r in rejected], pa.string()),
        }
    )


def write_outputs(out: str, predictions: list[pa.Table], rejected: pa.Table, summary: dict[str, Any]) -> None:
    """Write the three files under ``out`` (created when missing)."""
    fs, root = fsspec.core.url_to_fs(out)
    fs.makedirs(root, exist_ok=True)
    if predictions:
        table = pa.concat_tables(predictions)
        with fs.open(f"{root}/{PREDICTIONS}", "wb") as handle:
            pq.write_table(table, handle)
    with fs.open(f"{root}/{QUARANTINE}", "wb") as handle:
        pq.write_table(rejected, handle)
    with fs.open(f"{root}/{SUMMARY}", "w") as handle:
        handle.write(json.dumps(summary, indent=2, default=str))
