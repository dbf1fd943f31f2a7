"""Label fractions for label-efficiency studies: whole patients, chosen reproducibly by a seeded hash."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

import numpy as np


def patient_order(patient_keys: np.ndarray, seed: int) -> list[str]:
    """Patients in the order a fraction takes them: by SHA-256 of ``seed:patient``.

    It depends only on the seed and the patient keys, not on the order of the manifest, so a fraction
    is the same set of patients whichever way the records were ingested; smaller fractions are prefixes
    of larger ones.
    """
    unique = sorted({str(k) for k in patient_keys})
    return sorted(unique, key=lambda key: hashlib.sha256(f"{seed}:{key}".encode()).hexdigest())


@dataclass
class FractionSample:
    """Which records a label fraction keeps, and how it got there."""

    keep: np.ndarray  # (n,) bool over the candidate records
    fraction: float
    n_patients: int
    n_patients_total: int
    added_for_labels: dict[str, str] = field(default_factory=dict)  # label -> patient added to cover it

    @property
    def n_records(self) -> int:
        return int(self.keep.sum())


def sample_fraction(
    patient_keys: np.ndarray,
    targets: np.ndarray,
    fraction: float,
    *,
    seed: int,
    labels: list[str],
    ensure_positive_per_label: bool = True,
) -> FractionSample:
    """Keep ``ceil(fraction × patients)`` whole patients (at least one), in :func:`patient_order`.

    With ``ensure_positive_per_label``, a label none of them is positive for gets the first patient (in
    the same order) who is — so a 1 % sample still has an example of every class; the added patients
    are reported.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"label fraction must be in (0, 1], got {fraction}")
    keys = np.asarray([str(k) for k in patient_keys])
    order = patient_order(keys, seed)
    if fraction >= 1.0:
        return FractionSample(np.ones(len(keys), dtype=bool), 1.0, len(order), len(order))
    chosen = set(order[: max(1, math.ceil(fraction * len(order)))])
    added: dict[str, str] = {}
    if ensure_positive_per_label:
        rank = {key: i for i, key in enumerate(order)}
        for j, label in enumerate(labels):
            positive = targets[:, j] > 0
            if not positive.any() or positive[np.isin(keys, list(chosen))].any():
                continue
            first = min({str(k) for k in keys[positive]}, key=rank.__getitem__)
            chosen.add(first)
            added[label] = first
    keep = np.isin(keys, list(chosen))
    return FractionSample(keep, fraction, len(chosen), len(order), added)
