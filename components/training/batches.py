"""The one loader of store records for pretraining and fine-tuning: a dataset that gathers a batch's
signals with one read per shard (through a :class:`~components.io.store_view.StoreView`), and its
``DataLoader``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from components.io.store_view import StoreView

Batch = dict[str, torch.Tensor]


class StoreRecords(Dataset[Batch]):
    """Manifest ``rows`` of a store with per-record tensors (``fields``, indexed like ``rows``).

    A batch holds ``signal`` and every field for its records, plus what ``extra(indices)`` adds.
    """

    def __init__(
        self,
        view: StoreView,
        rows: np.ndarray,
        fields: Mapping[str, torch.Tensor],
        extra: Callable[[np.ndarray], Batch] | None = None,
    ) -> None:
        self.view = view
        self.rows = rows
        self.fields = dict(fields)
        self.extra = extra

    def __len__(self) -> int:
        return len(self.rows)

    def __getitems__(self, indices: list[int]) -> Batch:
        idx = np.asarray(indices, dtype=np.int64)
        batch = {"signal": torch.from_numpy(self.view.read(self.rows[idx]))}
        batch |= {name: values[idx] for name, values in self.fields.items()}
        if self.extra is not None:
            batch |= self.extra(idx)
        return batch

    def __getitem__(self, index: int) -> Batch:
        return {k: v[0] for k, v in self.__getitems__([index]).items()}


def _as_batch(batch: Any) -> Batch:
    """Collation is done by :meth:`StoreRecords.__getitems__`."""
    return cast(Batch, batch)


def batch_loader(records: StoreRecords, batch_sampler: Any, num_workers: int) -> DataLoader[Batch]:
    """Batches of ``records`` as ``batch_sampler`` lists them (workers kept between epochs)."""
    return DataLoader(
        records,
        batch_sampler=batch_sampler,
        collate_fn=_as_batch,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        pin_memory=torch.cuda.is_available(),
    )


def sequential_batches(n: int, batch_size: int) -> list[list[int]]:
    """Indices ``0..n-1`` in order, ``batch_size`` at a time."""
    return [list(range(i, min(i + batch_size, n))) for i in range(0, n, batch_size)]
