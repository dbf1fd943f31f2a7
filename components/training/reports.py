"""Report text for every record, extra training text, and PTB-XL superdiagnostic labels."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from components.config import SCHEMAS_DIR

SUPERCLASSES: tuple[str, ...] = ("NORM", "MI", "STTC", "CD", "HYP")


@cache
def _vocabulary(system: str) -> dict[str, dict]:
    path = SCHEMAS_DIR / "vocab" / f"{system.lower()}.yaml"
    if not path.is_file():
        return {}
    return {str(code): entry for code, entry in yaml.safe_load(path.read_text())["codes"].items()}


def _codes(labels_json: str | None) -> dict[str, float]:
    if not labels_json:
        return {}
    return {str(k): float(v) for k, v in json.loads(labels_json).items()}


def composed_report(labels_json: str | None, label_system: str | None) -> str:
    """A report made of the labels' descriptions (for records without free text), ``""`` if none known."""
    vocab = _vocabulary(label_system or "")
    parts = [
        vocab[c]["description"] for c in _codes(labels_json) if c in vocab and vocab[c].get("description")
    ]
    return ". ".join(parts) + ("." if parts else "")


def record_reports(manifest: pd.DataFrame) -> list[str]:
    """Each record's report: its free text, else one composed from its labels' descriptions."""
    out: list[str] = []
    for report, labels, system in zip(
        manifest["report"], manifest["labels"], manifest["label_system"], strict=True
    ):
        text = str(report).strip() if isinstance(report, str) else ""
        out.append(text or composed_report(labels, system))
    return out


def report_ids(reports: list[str]) -> np.ndarray:
    """One id per record for the CLIP objective: records with the same report share an id (they are
    positives of each other), and each record without a report gets an id of its own (an empty report
    says nothing, so two such records are never positives of each other)."""
    texts = np.asarray(reports, dtype=object)
    empty = np.array([not text for text in reports], dtype=bool)
    ids = np.empty(len(reports), dtype=np.int64)
    _, ids[~empty] = np.unique(texts[~empty], return_inverse=True)
    n_texts = int(ids[~empty].max()) + 1 if (~empty).any() else 0
    ids[empty] = n_texts + np.arange(int(empty.sum()))
    return ids


def superdiagnostic_targets(manifest: pd.DataFrame) -> np.ndarray:
    """``(n, 5)`` 0/1 PTB-XL diagnostic superclasses from SCP codes (any likelihood, as in the benchmark)."""
    scp = _vocabulary("SCP")
    targets = np.zeros((len(manifest), len(SUPERCLASSES)), dtype=np.int8)
    for i, (labels, system) in enumerate(zip(manifest["labels"], manifest["label_system"], strict=True)):
        if system != "SCP":
            continue
        for code in _codes(labels):
            superclass = scp.get(code, {}).get("diagnostic_class")
            if superclass in SUPERCLASSES:
                targets[i, SUPERCLASSES.index(superclass)] = 1
    return targets


def training_patient_reports(csv_path: Path, train_folds: list[int]) -> list[str]:
    """Reports of PTB-XL patients whose every record lies in a training fold.

    PTB-XL's ``strat_fold`` is patient-level; a patient with any record in another fold is left out
    entirely, so no validation or test patient's text reaches training.
    """
    frame = pd.read_csv(csv_path, usecols=["patient_id", "strat_fold", "report"])
    in_train = frame["strat_fold"].isin(train_folds)
    held_out = set(frame.loc[~in_train, "patient_id"])
    keep = in_train & ~frame["patient_id"].isin(held_out) & frame["report"].notna()
    return [str(r).strip() for r in frame.loc[keep, "report"] if str(r).strip()]
