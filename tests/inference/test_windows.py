"""Long records as windows: where the windows fall and how their probabilities combine (real records)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from components.config import IngestParams, Settings
from components.io.canonical import canonicalize, n_windows, split_windows, window_starts
from components.io.ingest import ingest
from components.io.store import DatasetStore
from components.io.store_view import StoreView
from components.io.wfdb_reader import read_record
from components.tasks.predict import predict_rows
from components.tasks.windows import WindowParams, aggregate
from tests.conftest import QUIET, REPO_ROOT, ingest_workspace, untrained_task_model

CINC = REPO_ROOT / "tests" / "fixtures" / "cinc"
CPSC = CINC / "cpsc2018"


def _canonical(name: str, fs: int = 100) -> tuple[np.ndarray, int]:
    record = read_record(CPSC / name)
    canonical = canonicalize(
        record.signal.T, record.fs, record.sig_names, record.units, target_fs=fs, target_samples=None
    )
    return canonical.signal, canonical.n_valid_samples


def test_a_15_s_record_is_two_windows_the_second_ending_at_its_end() -> None:
    signal, n_valid = _canonical("A0001")
    assert n_valid == 1500 and signal.shape == (12, 1500)
    windows = split_windows(signal, n_valid, 1000)
    assert windows.shape == (2, 12, 1000) and windows.dtype == np.float32
    np.testing.assert_array_equal(windows[0], signal[:, :1000])
    np.testing.assert_array_equal(windows[1], signal[:, 500:1500])


def test_windows_cover_every_sample_and_never_reach_past_the_record() -> None:
    for n_valid in (1, 999, 1000, 1001, 2000, 2100, 9999):
        starts = window_starts(n_valid, 1000)
        assert len(starts) == n_windows(n_valid, 1000)
        covered = np.zeros(max(n_valid, 1000), dtype=bool)
        for start in starts:
            covered[start : start + 1000] = True
        assert covered[:n_valid].all()
        assert starts.max() + 1000 <= max(n_valid, 1000)


def test_a_short_record_is_one_zero_padded_window_as_before() -> None:
    signal, _ = _canonical("A0001")
    windows = split_windows(signal[:, :700], 700, 1000)
    assert windows.shape == (1, 12, 1000)
    np.testing.assert_array_equal(windows[0, :, :700], signal[:, :700])
    assert not windows[0, :, 700:].any()


def test_mean_and_max_aggregate_each_records_own_windows() -> None:
    rng = np.random.default_rng(0)
    proba = rng.random((6, 3)).astype(np.float32)
    counts = np.array([1, 3, 2])
    mean = aggregate(proba, counts, "mean")
    np.testing.assert_allclose(mean[0], proba[0])
    np.testing.assert_allclose(mean[1], proba[1:4].mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(aggregate(proba, counts, "max")[2], proba[4:6].max(axis=0))
    with pytest.raises(ValueError, match="window rows"):
        aggregate(proba, np.array([2, 2]), "mean")


def test_records_stored_longer_than_the_model_are_evaluated_in_windows(tmp_path: Path) -> None:
    """Evaluation's reader (``predict_rows``): a store of 30-s records and a 10-s model — each record's
    probabilities are its windows' aggregate; without ``windows`` they are its first 10 s."""
    drop = tmp_path / "drop"
    drop.mkdir()
    for name, folder in (("A0001", "cpsc2018"), ("Q0026", "cpsc2018_extra")):
        for suffix in (".hea", ".mat"):
            shutil.copy(CINC / folder / f"{name}{suffix}", drop)
    settings = Settings(workspace=tmp_path / "ws", registry_url=f"sqlite:///{tmp_path / 'r.db'}")
    params = IngestParams(workers=1, target_fs=100, target_duration_s=30.0)
    ingest(ingest_workspace(settings, params), drop, dataset="long", options=QUIET)
    store = DatasetStore.open(settings.data_dir / "long")
    model = untrained_task_model()
    rows = np.arange(len(store.manifest))
    view = StoreView(store.root, 100, 1000)
    for how in ("mean", "max"):
        proba = predict_rows(model, view, rows, store.lead_masks(), windows=WindowParams(aggregate=how))
        for row in rows:
            n_valid = int(store.manifest["n_valid_samples"].iloc[row])
            windows = split_windows(store.read(np.array([row]))[0], n_valid, 1000)
            assert len(windows) == {1500: 2, 2100: 3}[n_valid]
            expected = model.predict_proba(
                windows, np.repeat(store.lead_masks()[[row]], len(windows), axis=0)
            )
            combine = expected.mean(axis=0) if how == "mean" else expected.max(axis=0)
            np.testing.assert_allclose(proba[row], combine, rtol=1e-5, atol=1e-6)
    first = predict_rows(model, view, rows, store.lead_masks())
    np.testing.assert_allclose(
        first, model.predict_proba(view.read(rows), store.lead_masks()[rows]), atol=1e-6
    )
