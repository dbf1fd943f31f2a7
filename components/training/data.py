"""Training data straight from the canonical store's memory-mapped shards (no per-record file opening)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from components.io.store import DatasetStore
from components.io.store_view import StoreView
from components.models.text import TextTokenizer
from components.training.batches import Batch, StoreRecords, batch_loader, sequential_batches
from components.training.params import PretrainParams
from components.training.reports import record_reports, report_ids
from components.training.sampler import EpochBatchSampler


class ReportDraw:
    """``extra_tokens`` for a batch: as many rows of ``pool`` (token ids of training-patient reports) as it
    has records, drawn as a function of the batch's indices and ``seed`` (so a resumed run draws the same).
    """

    def __init__(self, pool: np.ndarray, seed: int) -> None:
        self.pool = torch.from_numpy(pool)
        self.seed = seed

    def __call__(self, idx: np.ndarray) -> Batch:
        rng = np.random.default_rng([self.seed, *idx.tolist()])
        size = len(self.pool)
        draw = rng.choice(size, size=len(idx), replace=size < len(idx))
        return {"extra_tokens": self.pool[torch.from_numpy(draw)]}


class PretrainDataModule(L.LightningDataModule):
    """Train/val/test records of one store, batched as the run's ``params`` say.

    ``excluded`` record ids (quarantined or rejected by validation) are left out of every split. Every
    batch holds ``signal``, ``lead_mask`` and ``patient_id``. With a ``tokenizer`` (a recipe with a text
    space) it also holds the reports as token ids (``tokens``), or as embeddings (``text_features``, for a
    frozen report encoder: ``text_features`` turns report texts into them), and ``report_id``.
    ``text_pool``: reports of training-split patients for the text-only objective; training batches then
    carry ``extra_tokens`` (see :class:`ReportDraw`).
    """

    def __init__(
        self,
        root: Path,
        params: PretrainParams,
        *,
        tokenizer: TextTokenizer | None = None,
        excluded: frozenset[str] = frozenset(),
        text_features: Callable[[list[str]], np.ndarray] | None = None,
        text_pool: Sequence[str] | None = None,
    ):
        super().__init__()
        self.root = root
        self.params = params
        self.tokenizer = tokenizer
        self.excluded = excluded
        self.text_features = text_features
        self.text_pool = text_pool
        self.splits: dict[str, StoreRecords] = {}
        self.groups: np.ndarray | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        store = DatasetStore.open(self.root)
        manifest = store.manifest
        fields = {
            "lead_mask": torch.from_numpy(store.lead_masks()),
            "patient_id": torch.from_numpy(patient_codes(manifest)),
        } | self._report_fields(manifest)
        pool = self._report_pool()
        usable = ~manifest["record_id"].isin(self.excluded).to_numpy()  # validation's exclusions
        view = StoreView(self.root)
        for split in ("train", "val", "test"):
            rows = np.flatnonzero((manifest["split"].to_numpy() == split) & usable)
            if split == "train" and self.params.limit_train_records is not None:
                rows = rows[: self.params.limit_train_records]
            draw = ReportDraw(pool, self.params.seed) if split == "train" and pool is not None else None
            self.splits[split] = StoreRecords(view, rows, {k: v[rows] for k, v in fields.items()}, draw)
        train = manifest.iloc[self.splits["train"].rows]
        self.groups = _site_groups(train)

    def _report_fields(self, manifest: pd.DataFrame) -> dict[str, torch.Tensor]:
        """``tokens`` (or ``text_features``) and ``report_id`` of every record; none without a tokenizer."""
        if self.tokenizer is None:
            return {}
        reports = record_reports(manifest)
        if self.text_features is not None:
            text, key = np.asarray(self.text_features(reports), dtype=np.float32), "text_features"
        else:
            text, key = self.tokenizer.encode(reports), "tokens"
        return {key: torch.from_numpy(text), "report_id": torch.from_numpy(report_ids(reports))}

    def _report_pool(self) -> np.ndarray | None:
        if not self.text_pool:
            return None
        assert self.tokenizer is not None, "the text-only objective needs the report tokenizer"
        return self.tokenizer.encode(sorted(set(self.text_pool)))

    def train_dataloader(self) -> DataLoader[Batch]:
        """This epoch's batches (the Trainer reloads them every epoch, see the stage)."""
        trainer = self.trainer
        p = self.params
        sampler = EpochBatchSampler(
            len(self.splits["train"]),
            p.batch_size,
            seed=p.seed,
            groups=self.groups if p.sampler.in_distribution_batches else None,
            epoch=trainer.current_epoch if trainer else 0,
            rank=trainer.global_rank if trainer else 0,
            world_size=trainer.world_size if trainer else 1,
        )
        return batch_loader(self.splits["train"], sampler, p.num_workers)

    def val_dataloader(self) -> DataLoader[Batch]:
        batches = sequential_batches(len(self.splits["val"]), self.params.batch_size)
        return batch_loader(self.splits["val"], batches, self.params.num_workers)


def patient_codes(manifest: pd.DataFrame) -> np.ndarray:
    """One int64 id per record, the same for every record of a patient (``patient_key``); a record
    without a patient key is a patient of its own."""
    keys = manifest["patient_key"]
    own = "record:" + manifest["record_id"].astype(str)
    return pd.factorize(keys.astype(str).where(keys.notna(), own))[0].astype(np.int64)


def _site_groups(manifest: pd.DataFrame) -> np.ndarray:
    """The cohort of each record for In-Distribution Batches: ``source/site``."""
    site = manifest["site"].fillna("unknown").astype(str)
    return (manifest["source"].astype(str) + "/" + site).to_numpy()
