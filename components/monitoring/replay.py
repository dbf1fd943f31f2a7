"""The records a shadow evaluation replays, read at a model's rate: a drop, or the inputs of a logged window.

The prediction log never holds a signal, so a logged window is replayed from the records with the same
content hash in the workspace's stores (what the hospital ingests later); entries whose input is in no
store are counted, not guessed at.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from components.inference.params import PredictParams
from components.inference.reader import read_drop
from components.io.prepare import PreparedRecord
from components.io.store_view import StoreView
from components.models.task_model import TaskModelConfig
from components.workspace import Workspace

#: the columns of a chunk's records the comparison needs (labels as the manifest stores them)
META_COLUMNS = ("record", "input_hash", "patient", "labels", "label_system", "site", "device")


@dataclass(frozen=True)
class ReplayChunk:
    """Whole canonical records at one rate and what is known about them."""

    meta: pd.DataFrame  # META_COLUMNS
    signals: list[np.ndarray]
    masks: np.ndarray
    n_valid: np.ndarray


def drop_chunks(drop: Path, fs: int, params: PredictParams) -> Iterator[ReplayChunk]:
    """A drop's readable records in chunks (unreadable ones are left out: batch inference reports them)."""
    _, chunks = read_drop(drop, "auto", fs, workers=params.workers, chunk_records=params.chunk_records)
    for chunk in chunks:
        records = [r for r in chunk if isinstance(r, PreparedRecord)]
        if not records:
            continue
        meta = pd.DataFrame(
            {
                "record": [r.ref.source_record for r in records],
                "input_hash": [r.content_hash for r in records],
                "patient": [r.meta.patient_id or r.ref.source_record for r in records],
                "labels": [json.dumps(r.meta.labels) for r in records],
                "label_system": [r.meta.label_system for r in records],
                "site": [r.meta.site for r in records],
                "device": [r.meta.device for r in records],
            }
        )
        yield ReplayChunk(
            meta,
            [r.signal for r in records],
            np.stack([r.lead_mask for r in records]),
            np.array([r.n_valid_samples for r in records]),
        )


@dataclass(frozen=True)
class StoreMatch:
    """The stored records of a set of input hashes, per dataset, and the hashes found nowhere."""

    rows: dict[str, np.ndarray]
    missing: int


def stored_inputs(workspace: Workspace, hashes: set[str]) -> StoreMatch:
    """Where the logged inputs are stored (first dataset holding each hash)."""
    rows: dict[str, np.ndarray] = {}
    left = set(hashes)
    for dataset in workspace.store_datasets():
        manifest = workspace.store(dataset).manifest
        found = manifest["content_hash"].isin(left).to_numpy()
        if found.any():
            rows[dataset] = np.flatnonzero(found)
            left -= set(manifest["content_hash"].to_numpy()[found])
    return StoreMatch(rows, len(left))


def store_chunks(
    workspace: Workspace, match: StoreMatch, cfg: TaskModelConfig, chunk: int = 256
) -> Iterator[ReplayChunk]:
    """The matched stored records at the model's rate, whole, in chunks."""
    fs, n_samples = cfg.fs, cfg.n_samples
    for dataset, rows in match.rows.items():
        store = workspace.store(dataset)
        view = StoreView(store.root, fs, n_samples).whole_records()
        manifest, masks = store.manifest, store.lead_masks()
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            meta = manifest.iloc[part]
            yield ReplayChunk(
                pd.DataFrame(
                    {
                        "record": meta["record_id"].to_numpy(),
                        "input_hash": meta["content_hash"].to_numpy(),
                        "patient": meta["patient_key"].to_numpy(),
                        "labels": meta["labels"].to_numpy(),
                        "label_system": meta["label_system"].to_numpy(),
                        "site": meta["site"].to_numpy(),
                        "device": meta["device"].to_numpy(),
                    }
                ),
                list(view.read(part)),
                masks[part],
                view.n_valid(part),
            )
