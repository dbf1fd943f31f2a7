"""The reference a monitoring window is compared with: the production model on held-out records of the
dataset it was trained on (validation and test splits, validation's exclusions left out).

Scored once per model, dataset version and policy cap, and cached under ``.ecgops/monitoring/reference``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from components.inference.models import DeployedModel
from components.inference.scoring import score_records
from components.io.store_view import StoreView
from components.monitoring.errors import MonitoringError
from components.monitoring.policy import MonitoringPolicy
from components.validation.review import validation_exclusions
from components.workspace import Workspace

HELD_OUT = ("val", "test")
GROUPS = ("site", "device")


@dataclass(frozen=True)
class Reference:
    """Quality features (with site and device), pooled features and decisions of the reference records."""

    features: pd.DataFrame
    embedding: np.ndarray  # (n, width)
    decisions: np.ndarray  # (n, labels) bool
    dataset: str

    @property
    def positive_rates(self) -> np.ndarray:
        return self.decisions.mean(axis=0) if len(self.decisions) else np.zeros(self.decisions.shape[1])

    def __len__(self) -> int:
        return len(self.decisions)


def reference_for(workspace: Workspace, deployed: DeployedModel, policy: MonitoringPolicy) -> Reference:
    """The cached reference of ``deployed``, scored now when there is none."""
    dataset = deployed.info.dataset
    if dataset is None:
        raise MonitoringError(f"{deployed.ref} records no training dataset: there is nothing to compare with")
    store = workspace.store(dataset)
    manifest = store.manifest
    key = f"{deployed.ref}|{deployed.dataset_version}|{len(manifest)}|{policy.reference_max_records}"
    path = (
        workspace.state_dir
        / "monitoring"
        / "reference"
        / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
    )
    if path.exists():
        return _load(path, dataset)
    excluded = validation_exclusions(workspace, dataset)
    usable = manifest["split"].isin(HELD_OUT).to_numpy() & ~manifest["record_id"].isin(excluded).to_numpy()
    rows = np.flatnonzero(usable)
    if len(rows) == 0:
        raise MonitoringError(f"data/{dataset} has no held-out record (val/test) to build a reference from")
    if len(rows) > policy.reference_max_records:
        rows = np.sort(np.random.default_rng(0).choice(rows, policy.reference_max_records, replace=False))
    cfg = deployed.model.cfg
    view = StoreView(store.root, cfg.fs, cfg.n_samples).whole_records()
    scores = score_records(
        deployed.model,
        list(view.read(rows)),
        store.lead_masks()[rows],
        view.n_valid(rows),
        windows=workspace.params.windows,
        batch_size=workspace.params.predict.batch_size,
    )
    features = pd.DataFrame(scores.quality)
    for column in GROUPS:
        features[column] = manifest[column].fillna("").to_numpy(dtype=str)[rows]
    reference = Reference(features, scores.features, deployed.model.decide(scores.proba), dataset)
    _save(path, reference)
    return Reference(_unknown_is_missing(features.copy()), reference.embedding, reference.decisions, dataset)


def _save(path: Path, reference: Reference) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {
        f"feature.{c}": reference.features[c].to_numpy(dtype=str if c in GROUPS else np.float64)
        for c in reference.features.columns
    }
    arrays |= {"embedding": reference.embedding, "decisions": reference.decisions}
    partial = path.with_suffix(".partial.npz")
    np.savez(partial, **arrays)  # type: ignore[arg-type]
    partial.replace(path)


def _load(path: Path, dataset: str) -> Reference:
    with np.load(path) as data:
        features = pd.DataFrame(
            {name.removeprefix("feature."): data[name] for name in data.files if name.startswith("feature.")}
        )
        return Reference(_unknown_is_missing(features), data["embedding"], data["decisions"], dataset)


def _unknown_is_missing(features: pd.DataFrame) -> pd.DataFrame:
    """Site and device stored as "" where unknown (NumPy files hold no None) are missing again, so no
    drift group is made of records whose site nobody stated."""
    for column in GROUPS:
        features[column] = features[column].replace("", None)
    return features
