"""Where the per-record work of ingest and validate runs, when not here: :class:`Sharding`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeAlias, TypeVar

J = TypeVar("J")
R = TypeVar("R")

#: an ordered ``map`` (like the builtin) of a shard's work over the shards' jobs
ShardMap: TypeAlias = Callable[[Callable[[J], R], Iterable[J]], Iterator[R]]


@dataclass(frozen=True)
class Sharding(Generic[J, R]):
    """Run a stage's per-record work in shards of about ``records`` records with ``map``, e.g. one that
    runs each shard as a Prefect task on the run's Dask cluster
    (:class:`~components.orchestration.runners.TaskShards`). ``map`` returns the results in order."""

    map: ShardMap[J, R]
    records: int = 2048
