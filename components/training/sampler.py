"""Batch samplers: plain shuffled batches, or In-Distribution Batches (CAPE: one site per batch).

Both shard batches over DDP ranks themselves and are seeded by ``(seed, epoch)``, so an epoch yields the
same batches whether the run was resumed or not (the DataModule builds a sampler per epoch).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler


class EpochBatchSampler(Sampler[list[int]]):
    """Shuffled full batches (the last partial one dropped), split across ``world_size`` ranks.

    With ``groups`` given, each batch holds records of one group only (In-Distribution Batch sampling);
    groups smaller than a batch contribute no batch.
    """

    def __init__(
        self,
        n_records: int,
        batch_size: int,
        *,
        seed: int,
        groups: Sequence[str] | np.ndarray | None = None,
        epoch: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ):
        super().__init__()
        self.n_records = n_records
        self.batch_size = batch_size
        self.seed = seed
        self.groups = np.asarray(groups) if groups is not None else None
        self.rank = rank
        self.world_size = world_size
        self.epoch = epoch
        if len(self._all_batches()) < world_size:
            raise ValueError(
                f"{n_records} records give fewer than one batch of {batch_size} per rank ({world_size})"
            )

    def _all_batches(self) -> list[np.ndarray]:
        rng = np.random.default_rng([self.seed, self.epoch])
        if self.groups is None:
            members = [np.arange(self.n_records)]
        else:
            members = [np.flatnonzero(self.groups == g) for g in sorted(set(self.groups.tolist()))]
        batches: list[np.ndarray] = []
        for idx in members:
            shuffled = rng.permutation(idx)
            n_full = len(shuffled) // self.batch_size
            batches += list(shuffled[: n_full * self.batch_size].reshape(n_full, self.batch_size))
        return [batches[i] for i in rng.permutation(len(batches))]

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._all_batches()
        per_rank = len(batches) // self.world_size
        for batch in batches[self.rank * per_rank : (self.rank + 1) * per_rank]:
            yield batch.tolist()

    def __len__(self) -> int:
        return len(self._all_batches()) // self.world_size
