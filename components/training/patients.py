"""Patient positives for CAPE: each training record's partner is another record of the same patient.

A partner is drawn per record from ``(seed, epoch, index)`` with a counter-based hash, so it does not
depend on the batch the record lands in, a resumed run draws the same partners, and they change from epoch
to epoch. A patient with a single training record is its own partner: the recipe then contrasts two
augmented views of that record.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from components.io.store_view import StoreView
from components.training.batches import Batch

_MASK64 = (1 << 64) - 1


def patient_ids(keys: Sequence[str | None] | np.ndarray | pd.Series) -> np.ndarray:
    """An ``int64`` code per record, equal for equal patient keys (codes follow the keys' sorted order).

    A missing (null or empty) key is a patient of its own, so records of unknown patients never pair up.
    """
    values = pd.Series(np.asarray(keys, dtype=object))
    missing = (values.isna() | (values.astype(str).str.strip() == "")).to_numpy()
    codes, _ = pd.factorize(values.where(~missing, None), sort=True)
    ids = codes.astype(np.int64)
    ids[missing] = ids.max(initial=-1) + 1 + np.arange(int(missing.sum()), dtype=np.int64)
    return ids


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser over a ``uint64`` array (wrapping arithmetic)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    mixed: np.ndarray = x ^ (x >> np.uint64(31))
    return mixed


def _draws(seed: int, epoch: int, indices: np.ndarray) -> np.ndarray:
    """A uniform ``uint64`` per index, a pure function of ``(seed, epoch, index)``."""
    state = np.full(len(indices), seed & _MASK64, dtype=np.uint64)
    state = _mix(state) ^ np.uint64(epoch & _MASK64)
    return _mix(_mix(state) ^ indices.astype(np.uint64))


class PatientPartners:
    """For indices of the training records, another record of the same patient (see the module doc).

    ``patient_keys``: the ``patient_key`` of every training record, indexed like the training dataset.
    """

    def __init__(self, patient_keys: Sequence[str | None] | np.ndarray | pd.Series, seed: int) -> None:
        self.seed = seed
        self.patient_ids = patient_ids(patient_keys)
        counts = np.bincount(self.patient_ids)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        self._order = np.argsort(self.patient_ids, kind="stable")
        self._start = starts[self.patient_ids]
        self._count = counts[self.patient_ids]
        self._position = np.empty(len(self.patient_ids), dtype=np.int64)
        self._position[self._order] = np.arange(len(self._order)) - self._start[self._order]

    def __len__(self) -> int:
        return len(self.patient_ids)

    def __call__(self, indices: np.ndarray, epoch: int) -> np.ndarray:
        """A partner index for each of ``indices``: a different record of its patient, else itself."""
        idx = np.asarray(indices, dtype=np.int64)
        count, position = self._count[idx], self._position[idx]
        others = np.maximum(count - 1, 1).astype(np.uint64)
        offset = (_draws(self.seed, epoch, idx) % others).astype(np.int64)
        offset = np.where(count > 1, offset + (offset >= position), position)
        partner: np.ndarray = self._order[self._start[idx] + offset]
        return partner

    def summary(self) -> dict[str, Any]:
        """How many records have a real partner (for the pretraining report)."""
        per_patient = np.bincount(self.patient_ids)
        return {
            "records": len(self.patient_ids),
            "patients": int((per_patient > 0).sum()),
            "patients_with_several_records": int((per_patient > 1).sum()),
            "records_with_partner": int((self._count > 1).sum()),
        }


class PartnerBatch:
    """A :class:`~components.training.batches.StoreRecords` ``extra`` for CAPE: each record's partner.

    Adds ``partner_signal`` and ``partner_lead_mask`` (the partner record, read like the batch's own
    ``rows``), ``patient_id`` (int64, the group ids of the multi-positive loss) and ``partner_is_self``
    (bool: the patient has one training record; the recipe then uses two augmented views of it).
    ``epoch`` must be set (:meth:`set_epoch`) before each epoch's ``DataLoader`` is built, so that its
    workers get a copy with the right epoch.
    """

    def __init__(
        self,
        view: StoreView,
        rows: np.ndarray,
        lead_masks: torch.Tensor | np.ndarray,
        partners: PatientPartners,
        epoch: int = 0,
    ) -> None:
        if not len(rows) == len(lead_masks) == len(partners):
            raise ValueError(f"{len(rows)} rows, {len(lead_masks)} lead masks, {len(partners)} patient keys")
        self.view = view
        self.rows = rows
        self.lead_masks = torch.as_tensor(lead_masks)
        self.partners = partners
        self.epoch = epoch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __call__(self, idx: np.ndarray) -> Batch:
        partner = self.partners(idx, self.epoch)
        return {
            "partner_signal": torch.from_numpy(self.view.read(self.rows[partner])),
            "partner_lead_mask": self.lead_masks[torch.from_numpy(partner)],
            "patient_id": torch.from_numpy(self.partners.patient_ids[idx]),
            "partner_is_self": torch.from_numpy(partner == idx),
        }
