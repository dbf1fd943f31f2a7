"""Labelled records of a task straight from the store's memory-mapped shards, at the model's rate/length:
batches of ``signal``, ``lead_mask`` and ``target``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from components.io.store_view import StoreView
from components.tasks.labels import TaskRecords
from components.training.batches import Batch, StoreRecords, batch_loader, sequential_batches

VAL_BATCH = 256


class CyclingBatchSampler(Sampler[list[int]]):
    """Shuffled full batches seeded by ``(seed, epoch)``; a small training set is cycled (reshuffled each
    pass) until the epoch has ``min_batches`` batches, so 1 % of the labels still gets enough updates."""

    def __init__(self, n_records: int, batch_size: int, *, seed: int, epoch: int, min_batches: int = 0):
        super().__init__()
        if n_records < batch_size:
            raise ValueError(f"{n_records} records are fewer than one batch of {batch_size}")
        self.n_records = n_records
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = epoch
        self.n_batches = max(n_records // batch_size, min_batches)

    def __iter__(self) -> Any:
        stream: list[np.ndarray] = []
        needed = self.n_batches * self.batch_size
        cycle = 0
        while sum(len(s) for s in stream) < needed:
            stream.append(np.random.default_rng([self.seed, self.epoch, cycle]).permutation(self.n_records))
            cycle += 1
        order = np.concatenate(stream)[:needed].reshape(self.n_batches, self.batch_size)
        for batch in order:
            yield batch.tolist()

    def __len__(self) -> int:
        return self.n_batches


@dataclass
class SplitData:
    """What the DataModule trains and validates on."""

    train: TaskRecords
    val: TaskRecords
    lead_masks: np.ndarray  # (n manifest rows, 12)


class FinetuneDataModule(L.LightningDataModule):
    """Training batches (seeded per epoch, cycled for small fractions) and the validation split in order."""

    def __init__(
        self,
        view: StoreView,
        splits: SplitData,
        *,
        batch_size: int,
        seed: int,
        min_steps_per_epoch: int = 0,
        num_workers: int = 0,
    ):
        super().__init__()
        self.view = view
        self.splits = splits
        self.batch_size = min(batch_size, len(splits.train))
        self.seed = seed
        self.min_steps_per_epoch = min_steps_per_epoch
        self.num_workers = num_workers

    def _records(self, part: TaskRecords) -> StoreRecords:
        fields = {
            "lead_mask": torch.from_numpy(np.asarray(self.splits.lead_masks[part.rows], dtype=bool)),
            "target": torch.from_numpy(np.asarray(part.targets, dtype=np.float32)),
        }
        return StoreRecords(self.view, part.rows, fields)

    def train_dataloader(self) -> DataLoader[Batch]:
        trainer = self.trainer
        sampler = CyclingBatchSampler(
            len(self.splits.train),
            self.batch_size,
            seed=self.seed,
            epoch=trainer.current_epoch if trainer else 0,
            min_batches=self.min_steps_per_epoch,
        )
        return batch_loader(self._records(self.splits.train), sampler, self.num_workers)

    def val_dataloader(self) -> DataLoader[Batch]:
        batches = sequential_batches(len(self.splits.val), VAL_BATCH)
        return batch_loader(self._records(self.splits.val), batches, self.num_workers)
