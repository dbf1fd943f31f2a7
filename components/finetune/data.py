"""Labelled records of a task straight from the store's memory-mapped shards, at the model's rate/length."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from components.finetune.labels import TaskRecords
from components.io.prepare import resample
from components.io.store import DatasetStore
from components.models.task_model import TaskModel

Batch = dict[str, torch.Tensor]


def conform(signal: np.ndarray, fs: int, target_fs: int, n_samples: int) -> np.ndarray:
    """``(b, 12, t)`` at ``fs`` → ``(b, 12, n_samples)`` float32 at ``target_fs`` (polyphase; cut/padded)."""
    out = resample(signal, fs, target_fs) if fs != target_fs else signal
    t = out.shape[-1]
    if t > n_samples:
        out = out[..., :n_samples]
    elif t < n_samples:
        out = np.pad(out, [(0, 0)] * (out.ndim - 1) + [(0, n_samples - t)])
    return np.ascontiguousarray(out, dtype=np.float32)


class SignalReader:
    """Reads manifest rows of a store as a model expects them (its rate and number of samples)."""

    def __init__(self, root: Path, fs: int, n_samples: int):
        self.root = root
        self.fs = fs
        self.n_samples = n_samples
        self._store: DatasetStore | None = None

    @property
    def store(self) -> DatasetStore:
        """Opened lazily, so every loader worker maps the shards itself."""
        if self._store is None:
            self._store = DatasetStore.open(self.root)
        return self._store

    def read(self, rows: np.ndarray) -> np.ndarray:
        info = self.store.info
        return conform(self.store.read(rows), info.fs, self.fs, self.n_samples)

    def __getstate__(self) -> dict[str, Any]:
        return self.__dict__ | {"_store": None}


class LabelledRecords(Dataset[Batch]):
    """Records of one split with their targets; a batch is gathered with one read per shard."""

    def __init__(self, reader: SignalReader, rows: np.ndarray, lead_masks: np.ndarray, targets: np.ndarray):
        self.reader = reader
        self.rows = rows
        self.lead_masks = torch.from_numpy(np.asarray(lead_masks, dtype=bool))
        self.targets = torch.from_numpy(np.asarray(targets, dtype=np.float32))

    def __len__(self) -> int:
        return len(self.rows)

    def __getitems__(self, indices: list[int]) -> Batch:
        idx = np.asarray(indices, dtype=np.int64)
        return {
            "signal": torch.from_numpy(self.reader.read(self.rows[idx])),
            "lead_mask": self.lead_masks[idx],
            "target": self.targets[idx],
        }

    def __getitem__(self, index: int) -> Batch:
        return {k: v[0] for k, v in self.__getitems__([index]).items()}


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


def _as_batch(batch: Any) -> Batch:
    """Collation is done by :meth:`LabelledRecords.__getitems__`."""
    return batch


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
        reader: SignalReader,
        splits: SplitData,
        *,
        batch_size: int,
        seed: int,
        min_steps_per_epoch: int = 0,
        num_workers: int = 0,
    ):
        super().__init__()
        self.reader = reader
        self.splits = splits
        self.batch_size = min(batch_size, len(splits.train))
        self.seed = seed
        self.min_steps_per_epoch = min_steps_per_epoch
        self.num_workers = num_workers

    def _records(self, part: TaskRecords) -> LabelledRecords:
        return LabelledRecords(self.reader, part.rows, self.splits.lead_masks[part.rows], part.targets)

    def train_dataloader(self) -> DataLoader[Batch]:
        trainer = self.trainer
        sampler = CyclingBatchSampler(
            len(self.splits.train),
            self.batch_size,
            seed=self.seed,
            epoch=trainer.current_epoch if trainer else 0,
            min_batches=self.min_steps_per_epoch,
        )
        return self._loader(self._records(self.splits.train), sampler)

    def val_dataloader(self) -> DataLoader[Batch]:
        n = len(self.splits.val)
        batches = [list(range(i, min(i + 256, n))) for i in range(0, n, 256)]
        return self._loader(self._records(self.splits.val), batches)

    def _loader(self, records: LabelledRecords, batch_sampler: Any) -> DataLoader[Batch]:
        return DataLoader(
            records,
            batch_sampler=batch_sampler,
            collate_fn=_as_batch,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
        )


def predict_rows(
    model: TaskModel, reader: SignalReader, rows: np.ndarray, lead_masks: np.ndarray, chunk: int = 256
) -> np.ndarray:
    """``(len(rows), n_labels)`` probabilities of manifest ``rows`` (``lead_masks``: the whole store's)."""
    out = [
        model.predict_proba(
            reader.read(rows[i : i + chunk]), lead_masks[rows[i : i + chunk]], batch_size=chunk
        )
        for i in range(0, len(rows), chunk)
    ]
    return np.concatenate(out) if out else np.zeros((0, len(model.cfg.labels)), dtype=np.float32)
