"""Training data straight from the canonical store's memory-mapped shards (no per-record file opening)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from components.io.store import DatasetStore
from components.models.text import TextTokenizer
from components.training.reports import record_reports
from components.training.sampler import EpochBatchSampler

Batch = dict[str, torch.Tensor]


class StoreRecords(Dataset[Batch]):
    """Records of one split: signals gathered from the shards a batch at a time, the rest precomputed.

    ``text`` is each record's report as token ids (key ``tokens``) or, for a frozen report encoder, as
    its cached embedding (key ``text_features``). With ``text_pool`` (token ids of training-patient
    reports), every batch also carries ``extra_tokens``: as many pool rows as the batch has records,
    drawn as a function of the batch's indices and ``seed`` (so a resumed run draws the same).
    """

    def __init__(
        self,
        root: Path,
        rows: np.ndarray,
        lead_masks: np.ndarray,
        text: np.ndarray,
        report_ids: np.ndarray,
        *,
        text_key: str = "tokens",
        text_pool: np.ndarray | None = None,
        seed: int = 0,
    ):
        self.root = root
        self.rows = rows
        self.lead_masks = torch.from_numpy(lead_masks)
        self.text = torch.from_numpy(text)
        self.text_key = text_key
        self.report_ids = torch.from_numpy(report_ids)
        self.text_pool = torch.from_numpy(text_pool) if text_pool is not None else None
        self.seed = seed
        self._store: DatasetStore | None = None

    @property
    def store(self) -> DatasetStore:
        """Opened lazily, so every loader worker maps the shards itself."""
        if self._store is None:
            self._store = DatasetStore.open(self.root)
        return self._store

    def __len__(self) -> int:
        return len(self.rows)

    def __getitems__(self, indices: list[int]) -> Batch:
        idx = np.asarray(indices, dtype=np.int64)
        batch = {
            "signal": torch.from_numpy(self.store.read(self.rows[idx])),
            "lead_mask": self.lead_masks[idx],
            self.text_key: self.text[idx],
            "report_id": self.report_ids[idx],
        }
        if self.text_pool is not None:
            rng = np.random.default_rng([self.seed, *idx.tolist()])
            size = len(self.text_pool)
            draw = rng.choice(size, size=len(idx), replace=size < len(idx))
            batch["extra_tokens"] = self.text_pool[torch.from_numpy(draw)]
        return batch

    def __getitem__(self, index: int) -> Batch:
        return {k: v[0] for k, v in self.__getitems__([index]).items()}


def _as_batch(batch: Any) -> Batch:
    """Collation is done by :meth:`StoreRecords.__getitems__`."""
    return batch


class PretrainDataModule(L.LightningDataModule):
    """Train/val/test records of one store with their report tokens and report ids.

    ``excluded`` record ids (quarantined or rejected by validation) are left out of every split.
    ``text_features`` (for a frozen report encoder) turns report texts into embeddings, used instead of
    token ids. ``text_pool``: reports of training-split patients for the text-only objective; training
    batches then carry ``extra_tokens`` (see :class:`StoreRecords`).
    """

    def __init__(
        self,
        root: Path,
        tokenizer: TextTokenizer,
        *,
        batch_size: int,
        seed: int,
        num_workers: int = 0,
        in_distribution_batches: bool = False,
        limit_train_records: int | None = None,
        excluded: frozenset[str] = frozenset(),
        text_features: Callable[[list[str]], np.ndarray] | None = None,
        text_pool: Sequence[str] | None = None,
    ):
        super().__init__()
        self.excluded = excluded
        self.text_features = text_features
        self.text_pool = text_pool
        self.root = root
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.seed = seed
        self.num_workers = num_workers
        self.in_distribution_batches = in_distribution_batches
        self.limit_train_records = limit_train_records
        self.splits: dict[str, StoreRecords] = {}
        self.groups: np.ndarray | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        store = DatasetStore.open(self.root)
        manifest = store.manifest
        reports = record_reports(manifest)
        _, report_ids = np.unique(np.asarray(reports, dtype=object), return_inverse=True)
        if self.text_features is not None:
            text, text_key = np.asarray(self.text_features(reports), dtype=np.float32), "text_features"
        else:
            text, text_key = self.tokenizer.encode(reports), "tokens"
        pool = self.tokenizer.encode(sorted(set(self.text_pool))) if self.text_pool else None
        masks = store.lead_masks()
        usable = ~manifest["record_id"].isin(self.excluded).to_numpy()  # validation's exclusions
        for split in ("train", "val", "test"):
            rows = np.flatnonzero((manifest["split"].to_numpy() == split) & usable)
            if split == "train" and self.limit_train_records is not None:
                rows = rows[: self.limit_train_records]
            self.splits[split] = StoreRecords(
                self.root,
                rows,
                masks[rows],
                text[rows],
                report_ids[rows].astype(np.int64),
                text_key=text_key,
                text_pool=pool if split == "train" else None,
                seed=self.seed,
            )
        train = manifest.iloc[self.splits["train"].rows]
        self.groups = _site_groups(train)

    def train_dataloader(self) -> DataLoader[Batch]:
        """This epoch's batches (the Trainer reloads them every epoch, see the stage)."""
        trainer = self.trainer
        sampler = EpochBatchSampler(
            len(self.splits["train"]),
            self.batch_size,
            seed=self.seed,
            groups=self.groups if self.in_distribution_batches else None,
            epoch=trainer.current_epoch if trainer else 0,
            rank=trainer.global_rank if trainer else 0,
            world_size=trainer.world_size if trainer else 1,
        )
        return self._loader(self.splits["train"], sampler)

    def val_dataloader(self) -> DataLoader[Batch]:
        return self._loader(self.splits["val"], _sequential(len(self.splits["val"]), self.batch_size))

    def _loader(self, records: StoreRecords, batch_sampler: Any) -> DataLoader[Batch]:
        return DataLoader(
            records,
            batch_sampler=batch_sampler,
            collate_fn=_as_batch,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
        )


def _sequential(n: int, batch_size: int) -> list[list[int]]:
    return [list(range(i, min(i + batch_size, n))) for i in range(0, n, batch_size)]


def _site_groups(manifest: pd.DataFrame) -> np.ndarray:
    """The cohort of each record for In-Distribution Batches: ``source/site``."""
    site = manifest["site"].fillna("unknown").astype(str)
    return (manifest["source"].astype(str) + "/" + site).to_numpy()
