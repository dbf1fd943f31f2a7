"""Feature extraction in shards of record ranges (a ``Sharding``) gives the unsharded tables exactly; the
shards carry a store path and a row range, never signals."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from components.io.sharding import Sharding
from components.io.store import DatasetStore
from components.quality.features import record_ranges
from components.validation import load_policy
from components.validation.stage import RangeJob, store_features


def test_record_ranges_cover_every_record_once_on_batch_boundaries() -> None:
    assert record_ranges(1000, 700, 512) == [(0, 512), (512, 1000)]  # rounded down to whole batches
    assert record_ranges(1000, 2000, 512) == [(0, 1000)]
    assert record_ranges(10, 4, 512) == [(0, 4), (4, 8), (8, 10)]  # smaller than a batch: as asked
    assert record_ranges(0, 4, 512) == []


@pytest.mark.parametrize("shard_records", [37, 128, 600])
def test_sharded_features_equal_the_unsharded_ones(demo_store: DatasetStore, shard_records: int) -> None:
    policy = load_policy()
    whole = store_features(demo_store, policy)
    jobs: list[RangeJob] = []

    def in_process(fn: Callable[[RangeJob], Any], items: Iterable[RangeJob]) -> Iterator[Any]:
        for job in items:
            jobs.append(job)
            yield fn(job)

    sharded = store_features(demo_store, policy, Sharding(in_process, shard_records))
    pd.testing.assert_frame_equal(sharded.records, whole.records, check_exact=True)
    pd.testing.assert_frame_equal(sharded.leads, whole.leads, check_exact=True)
    expected = record_ranges(len(demo_store), shard_records, policy.features.batch_records)
    assert [(start, stop) for _, start, stop, _ in jobs] == expected
    assert len(jobs) == (1 if shard_records >= len(demo_store) else -(-len(demo_store) // shard_records))
    for root, *_ in jobs:  # a path the worker opens itself, not arrays
        assert isinstance(root, str) and Path(root) == demo_store.root.resolve()


def test_a_range_past_the_store_is_an_error(demo_store: DatasetStore) -> None:
    from components.validation.stage import range_features

    n = len(demo_store)
    with pytest.raises(ValueError, match="rows"):
        range_features((str(demo_store.root), n - 1, n + 5, load_policy().features))
