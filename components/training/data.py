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
    """Train/val/test records of one store with their report tokens and report ids.

    ``excluded`` record ids (quarantined or rejected by validation) are left out of every split.
    ``text_features`` (for a frozen report encoder) turns report texts into embeddings, used instead of
    token ids. A batch holds ``signal``, ``lead_mask``, the reports as token ids (``tokens``) or embeddings
    (``text_features``) and ``report_id``. ``text_pool``: reports of training-split patients for the
    text-only objective; training batches then carry ``extra_tokens`` (see :class:`ReportDraw`).
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
        ids = report_ids(reports)
        if self.text_features is not None:
            text, text_key = np.asarray(self.text_features(reports), dtype=np.float32), "text_features"
        else:
            text, text_key = self.tokenizer.encode(reports), "tokens"
        pool = self.tokenizer.encode(sorted(set(self.text_pool))) if self.text_pool else None
        masks = store.lead_masks()
        usable = ~manifest["record_id"].isin(self.excluded).to_numpy()  # validation's exclusions
        view = StoreView(self.root)
        for split in ("train", "val", "test"):
            rows = np.flatnonzero((manifest["split"].to_numpy() == split) & usable)
            if split == "train" and self.limit_train_records is not None:
                rows = rows[: self.limit_train_records]
            fields = {
                "lead_mask": torch.from_numpy(masks[rows]),
                text_key: torch.from_numpy(text[rows]),
                "report_id": torch.from_numpy(ids[rows]),
            }
            draw = ReportDraw(pool, self.seed) if split == "train" and pool is not None else None
            self.splits[split] = StoreRecords(view, rows, fields, draw)
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
        return batch_loader(self.splits["train"], sampler, self.num_workers)

    def val_dataloader(self) -> DataLoader[Batch]:
        batches = sequential_batches(len(self.splits["val"]), self.batch_size)
        return batch_loader(self.splits["val"], batches, self.num_workers)


def _site_groups(manifest: pd.DataFrame) -> np.ndarray:
    """The cohort of each record for In-Distribution Batches: ``source/site``."""
    site = manifest["site"].fillna("unknown").astype(str)
    return (manifest["source"].astype(str) + "/" + site).to_numpy()
