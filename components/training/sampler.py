"""Batch samplers: plain shuffled batches, or In-Distribution Batches (CAPE: one group per batch).

Both shard batches over DDP ranks themselves and are seeded by ``(seed, epoch)``, so an epoch yields the
same batches whether the run was resumed or not (the DataModule builds a sampler per epoch). Batches are
drawn as *global* batches of ``batch_size * world_size`` records and rank ``r`` takes the ``r``-th slice of
each, so under DDP every rank's batch of a step comes from the same group (the contrastive losses gather
embeddings across ranks: the negatives are the global batch).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from torch.utils.data import Sampler

SmallGroups = Literal["merge", "pad"]
#: the name of the pool of groups smaller than a global batch (``small_groups="merge"``)
MERGED = "(merged)"


@dataclass(frozen=True)
class _Pool:
    """Records that global batches are drawn from: one group, or the merged small groups."""

    name: str
    groups: tuple[str, ...]
    members: np.ndarray
    complete: bool  # the last partial batch is filled with repeats instead of left out


@dataclass(frozen=True)
class _Cut:
    batches: list[np.ndarray]
    left_out: int
    repeats: int


class EpochBatchSampler(Sampler[list[int]]):
    """Shuffled full batches of ``batch_size`` per rank, split across ``world_size`` ranks.

    Without ``groups`` the last partial global batch is left out. With ``groups`` (one label per record,
    see :func:`components.training.groups.record_groups`) every global batch holds records of one group
    only (In-Distribution Batches); a group's last partial global batch is left out. Groups smaller than a
    global batch are never dropped: ``small_groups="merge"`` (default) pools them into one mixed group,
    ``"pad"`` keeps each on its own and fills its single batch with repeats of its records. Either way the
    last batch of such a pool is filled with repeats, so each of their records is seen every epoch.
    :meth:`report` says what was done.
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
        small_groups: SmallGroups = "merge",
    ):
        super().__init__()
        if small_groups not in ("merge", "pad"):
            raise ValueError(f"small_groups is 'merge' or 'pad', not {small_groups!r}")
        if not 0 <= rank < world_size or batch_size < 1:
            raise ValueError(f"rank {rank} of {world_size} ranks, batch size {batch_size}")
        self.n_records = n_records
        self.batch_size = batch_size
        self.seed = seed
        self.groups = np.asarray(groups).astype(str) if groups is not None else None
        if self.groups is not None and len(self.groups) != n_records:
            raise ValueError(f"{len(self.groups)} group labels for {n_records} records")
        self.rank = rank
        self.world_size = world_size
        self.small_groups = small_groups
        self.epoch = epoch
        self._pools = self._make_pools()
        self._cache: tuple[int, list[np.ndarray], list[_Cut]] | None = None
        if n_records < self.global_batch_size:
            raise ValueError(
                f"{n_records} records give fewer than one batch of {batch_size} per rank ({world_size})"
            )

    @property
    def global_batch_size(self) -> int:
        return self.batch_size * self.world_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _make_pools(self) -> list[_Pool]:
        if self.groups is None:
            return [_Pool("all", ("all",), np.arange(self.n_records), complete=False)]
        names, codes, counts = np.unique(self.groups, return_inverse=True, return_counts=True)
        members = np.split(np.argsort(codes, kind="stable"), np.cumsum(counts)[:-1])
        pools = [
            _Pool(str(name), (str(name),), idx, complete=False)
            for name, idx in zip(names, members, strict=True)
            if len(idx) >= self.global_batch_size
        ]
        small = [
            (str(n), idx) for n, idx in zip(names, members, strict=True) if len(idx) < self.global_batch_size
        ]
        if self.small_groups == "pad":
            return pools + [_Pool(name, (name,), idx, complete=True) for name, idx in small]
        if small:
            merged = np.concatenate([idx for _, idx in small])
            pools.append(_Pool(MERGED, tuple(name for name, _ in small), merged, complete=True))
        return pools

    def _epoch_batches(self) -> tuple[list[np.ndarray], list[_Cut]]:
        """This epoch's global batches (a pure function of seed, epoch and groups) and each pool's cut."""
        if self._cache is None or self._cache[0] != self.epoch:
            rng = np.random.default_rng([self.seed, self.epoch])
            cuts = [_cut(pool, self.global_batch_size, rng) for pool in self._pools]
            batches = [batch for cut in cuts for batch in cut.batches]
            self._cache = (self.epoch, [batches[i] for i in rng.permutation(len(batches))], cuts)
        return self._cache[1], self._cache[2]

    def global_batches(self) -> list[np.ndarray]:
        """This epoch's batches of ``batch_size * world_size`` records, in order (the same on every rank)."""
        return list(self._epoch_batches()[0])

    def __iter__(self) -> Iterator[list[int]]:
        lo, hi = self.rank * self.batch_size, (self.rank + 1) * self.batch_size
        for batch in self._epoch_batches()[0]:
            yield batch[lo:hi].tolist()

    def __len__(self) -> int:
        return len(self._epoch_batches()[0])

    def report(self) -> dict[str, Any]:
        """What this epoch's batches are made of, JSON-able and the same on every rank."""
        batches, cuts = self._epoch_batches()
        pools = [
            {
                "name": pool.name,
                "groups": list(pool.groups),
                "records": len(pool.members),
                "batches": len(cut.batches),
                "left_out": cut.left_out,
                "repeats": cut.repeats,
            }
            for pool, cut in zip(self._pools, cuts, strict=True)
        ]
        merged = [p for p in self._pools if p.name == MERGED]
        return {
            "in_distribution": self.groups is not None,
            "seed": self.seed,
            "epoch": self.epoch,
            "batch_size": self.batch_size,
            "world_size": self.world_size,
            "global_batch_size": self.global_batch_size,
            "small_groups": self.small_groups,
            "records": self.n_records,
            "steps": len(batches),
            "groups": self._group_sizes(),
            "merged": list(merged[0].groups) if merged else [],
            "padded": [p["name"] for p in pools if p["repeats"]],
            "mixed_batches": self._mixed(batches),
            "records_left_out": sum(c.left_out for c in cuts),
            "repeats": sum(c.repeats for c in cuts),
            "pools": pools,
        }

    def _group_sizes(self) -> dict[str, int]:
        if self.groups is None:
            return {"all": self.n_records}
        names, counts = np.unique(self.groups, return_counts=True)
        return {str(n): int(c) for n, c in zip(names, counts, strict=True)}

    def _mixed(self, batches: list[np.ndarray]) -> int:
        """Global batches holding more than one group (only those of the merged pool can)."""
        if self.groups is None:
            return 0
        labels = [self.groups[batch] for batch in batches]
        return sum(bool((group != group[0]).any()) for group in labels)


def _cut(pool: _Pool, size: int, rng: np.random.Generator) -> _Cut:
    """``pool`` shuffled into global batches of ``size``; its last partial one left out or completed with
    repeats (drawn from records of earlier batches where there are any, so a batch repeats none of its
    own records unless the pool is smaller than a batch)."""
    shuffled = rng.permutation(pool.members)
    n_full = len(shuffled) // size
    placed, rest = shuffled[: n_full * size], shuffled[n_full * size :]
    batches = list(placed.reshape(n_full, size))
    if not len(rest):
        return _Cut(batches, 0, 0)
    if not pool.complete:
        return _Cut(batches, len(rest), 0)
    source = placed if n_full else rest
    need = size - len(rest)
    repeats = rng.choice(source, need, replace=need > len(source))
    batches.append(rng.permutation(np.concatenate([rest, repeats])))
    return _Cut(batches, 0, need)
