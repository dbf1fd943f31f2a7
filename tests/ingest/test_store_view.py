"""The store view reads rows as stored, or at a model's rate and length through the one cut/pad."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from components.io.canonical import conform, cut_or_pad
from components.io.prepare import resample
from components.io.store import DatasetStore
from components.io.store_view import StoreView


def test_rows_as_stored_and_pickled_without_the_open_store(demo_store: DatasetStore) -> None:
    rows = np.array([5, 0, 17])
    view = StoreView(demo_store.root)
    np.testing.assert_array_equal(view.read(rows), demo_store.read(rows))
    assert view._store is not None and pickle.loads(pickle.dumps(view))._store is None


@pytest.mark.parametrize(("fs", "n_samples"), [(100, 700), (100, 1500), (250, 2500), (50, 400)])
def test_a_batch_is_conformed_as_each_record_would_be(
    demo_store: DatasetStore, fs: int, n_samples: int
) -> None:
    rows = np.arange(8)
    batch = StoreView(demo_store.root, fs, n_samples).read(rows)
    assert batch.shape == (8, 12, n_samples) and batch.dtype == np.float32 and batch.flags.c_contiguous
    for i, row in enumerate(rows):
        stored = demo_store.read([row])[0]
        one, n_valid = cut_or_pad(resample(stored, demo_store.info.fs, fs), n_samples)
        np.testing.assert_array_equal(batch[i], one)
        assert not one[:, n_valid:].any()
    np.testing.assert_array_equal(conform(demo_store.read(rows), demo_store.info.fs, fs, n_samples), batch)
