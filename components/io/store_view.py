"""A view of a canonical store that loaders and predictions read records through."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from components.io.canonical import conform
from components.io.store import DatasetStore


class StoreView:
    """Signals of manifest rows, as stored or at a model's rate and length (``fs`` and ``n_samples``).

    The store is opened lazily and left out when the view is pickled, so every loader worker maps the
    shards itself.
    """

    def __init__(self, root: Path, fs: int | None = None, n_samples: int | None = None) -> None:
        self.root = root
        self.fs = fs
        self.n_samples = n_samples
        self._store: DatasetStore | None = None

    @property
    def store(self) -> DatasetStore:
        if self._store is None:
            self._store = DatasetStore.open(self.root)
        return self._store

    def read(self, rows: np.ndarray) -> np.ndarray:
        """``(len(rows), 12, samples)`` float32 signals of manifest ``rows``."""
        signals = self.store.read(rows)
        if self.fs is None or self.n_samples is None:
            return signals
        return conform(signals, self.store.info.fs, self.fs, self.n_samples)

    def whole_records(self) -> StoreView:
        """This view at its rate but the stored length (records longer than the model's input are read
        whole, for :func:`~components.io.canonical.split_windows`)."""
        if self.fs is None:
            return self
        info = self.store.info
        return StoreView(self.root, self.fs, int(np.ceil(info.n_samples * self.fs / info.fs)))

    def n_valid(self, rows: np.ndarray) -> np.ndarray:
        """Real (not padded) samples of each of ``rows`` at this view's rate, at most its length."""
        info = self.store.info
        stored = self.store.manifest["n_valid_samples"].to_numpy()[rows]
        if self.fs is None or self.n_samples is None:
            return stored.astype(np.int64)
        return np.minimum(np.round(stored * self.fs / info.fs).astype(np.int64), self.n_samples)

    def __getstate__(self) -> dict[str, Any]:
        return self.__dict__ | {"_store": None}
