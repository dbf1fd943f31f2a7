"""Records of a cohort → the task model's probabilities, with truth and subgroup attributes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from components.evaluation.cohorts import record_attributes
from components.evaluation.compute import Predictions
from components.io.store import DatasetStore
from components.io.store_view import StoreView
from components.models.task_model import TaskModel
from components.tasks.labels import select_records, task_targets
from components.tasks.predict import predict_rows
from components.tasks.spec import TaskSpec
from components.tasks.windows import WindowParams


@dataclass
class Cohort:
    """The usable records of one cohort and what was left out."""

    store: DatasetStore
    rows: np.ndarray
    targets: np.ndarray
    excluded: dict[str, int]
    n_mapped: int

    @property
    def record_ids(self) -> np.ndarray:
        return self.store.manifest["record_id"].to_numpy()[self.rows]


def select_cohort(
    store: DatasetStore, spec: TaskSpec, *, split: str | None, excluded_ids: frozenset[str]
) -> Cohort:
    """Rows of ``split`` (None: every record, for external cohorts) the task can evaluate."""
    table = task_targets(store.manifest, spec)
    records = select_records(
        store.manifest, store.lead_masks(), spec, split=split, excluded_ids=excluded_ids, table=table
    )
    return Cohort(
        store, records.rows, records.targets, records.excluded, int(table.mapped[records.rows].sum())
    )


def score(model: TaskModel, cohort: Cohort, windows: WindowParams) -> np.ndarray:
    """The model's probabilities for the cohort's records, read at the model's rate; records stored
    longer than its input are read whole, in windows aggregated with ``windows``."""
    view = StoreView(cohort.store.root, model.cfg.fs, model.cfg.n_samples)
    return predict_rows(model, view, cohort.rows, cohort.store.lead_masks(), windows=windows)


def predictions(cohort: Cohort, proba: np.ndarray, age_edges: list[float]) -> Predictions:
    manifest = cohort.store.manifest.iloc[cohort.rows]
    return Predictions(
        record_ids=cohort.record_ids,
        patients=manifest["patient_key"].astype(str).to_numpy(),
        targets=cohort.targets,
        proba=proba,
        attributes=record_attributes(manifest, age_edges),
    )
