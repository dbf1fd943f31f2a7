"""The prediction log on real files (a local folder and fsspec's memory filesystem): round trip, date
partitions and filters, corrupt parts skipped and reported, quality columns unified, retention."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import fsspec
import numpy as np
import pandas as pd
import pytest

from components.predictions.errors import PredictionLogError
from components.predictions.log import PredictionLog, entry_records, volume

from .helpers import T0, TASK, entry

DAY = timedelta(days=1)


@pytest.fixture(params=["local", "memory"])
def log_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "local":
        yield str(tmp_path / "predictions")
        return
    url = f"memory://predictions-{uuid.uuid4().hex}"
    yield url
    fs, path = fsspec.core.url_to_fs(url)
    if fs.exists(path):
        fs.rm(path, recursive=True)


def test_entries_come_back_as_written_from_one_part_per_day(log_url: str) -> None:
    log = PredictionLog(log_url)
    entries = [entry(T0, seed=0), entry(T0 + timedelta(minutes=5), seed=1, site=None, device=None)]
    late = entry(T0 + DAY, seed=2, source="batch", n_windows=3)
    parts = log.append([*entries, late])
    assert [p.split("/")[-2] for p in parts] == ["date=2026-03-01", "date=2026-03-02"]
    assert all(p.split("/")[-1].startswith("part-") and p.endswith(".parquet") for p in parts)
    assert parts[0].split("/")[-1] == parts[1].split("/")[-1]  # one append, one part name
    fs, root = fsspec.core.url_to_fs(log_url)
    assert not [f for f in fs.find(root) if f.endswith(".tmp")]

    frame = log.read().frame
    assert list(frame["request_id"]) == [e.request_id for e in [*entries, late]]
    for row, written in zip(frame.to_dict("records"), [*entries, late], strict=True):
        assert row["time"].to_pydatetime() == written.time
        assert list(row["probabilities"]) == written.probabilities
        assert list(row["decisions"]) == written.decisions
        assert list(row["labels"]) == written.labels
        assert np.allclose(row["embedding"], written.embedding) and row["embedding"].dtype == np.float32
        assert row["quality.snr_db"] == written.quality["snr_db"]
        assert row["n_windows"] == written.n_windows and row["source"] == written.source
    assert frame["site"].isna().tolist() == [False, True, False]
    assert str(frame["time"].dtype) == "datetime64[us, UTC]"


def test_reads_keep_the_window_model_task_and_source_asked_for(log_url: str) -> None:
    log = PredictionLog(log_url)
    log.append([entry(T0 + i * DAY, seed=i, model_ref=f"{TASK}@{3 + i % 2}") for i in range(4)])
    log.append([entry(T0 + DAY, task="ptbxl-rhythm", model_ref="ptbxl-rhythm@1", source="shadow")])

    def days(frame: pd.DataFrame) -> list[int]:
        return [(t - T0).days for t in frame["time"]]

    assert days(log.read(since=T0 + DAY, until=T0 + 3 * DAY, task=TASK).frame) == [1, 2]
    assert days(log.read(since=T0 + DAY + timedelta(seconds=1)).frame) == [2, 3]
    assert days(log.read(model=f"{TASK}@4").frame) == [1, 3]
    assert days(log.read(model=TASK).frame) == [0, 1, 2, 3]  # a name: every version
    assert list(log.read(source="shadow").frame["model_ref"]) == ["ptbxl-rhythm@1"]
    assert log.read(model="ptbxl").frame.empty  # a name is not a prefix of another name
    with pytest.raises(ValueError, match="since must be timezone-aware"):
        log.read(since=T0.replace(tzinfo=None))


def test_a_corrupt_part_is_skipped_and_reported_and_the_rest_is_read(log_url: str) -> None:
    log = PredictionLog(log_url)
    log.append([entry(T0, seed=0), entry(T0 + timedelta(hours=1), seed=1)])
    log.append([entry(T0 + DAY, seed=2)])
    fs, root = fsspec.core.url_to_fs(log_url)
    day = f"{root}/date=2026-03-01"
    fs.pipe_file(f"{day}/part-garbage.parquet", np.random.default_rng(0).bytes(2048))
    fs.pipe_file(f"{day}/part-empty.parquet", b"")
    fs.pipe_file(f"{day}/part-other-table.parquet", _parquet(pd.DataFrame({"x": [1, 2]})))
    fs.pipe_file(f"{day}/.part-being-written.parquet.tmp", b"PAR1")
    fs.makedirs(f"{root}/date=last-week", exist_ok=True)

    window = log.read()
    assert len(window.frame) == 3
    reasons = {s.path.rsplit("/", 1)[-1]: s.reason for s in window.skipped}
    assert set(reasons) == {
        "part-garbage.parquet",
        "part-empty.parquet",
        "part-other-table.parquet",
        "date=last-week",
    }
    assert "missing columns time, request_id" in reasons["part-other-table.parquet"]
    assert "names no date" in reasons["date=last-week"]
    later = log.read(since=T0 + DAY)  # the damaged day is not even opened
    assert len(later.frame) == 1 and [s.path.rsplit("/", 1)[-1] for s in later.skipped] == ["date=last-week"]


def test_parts_with_other_quality_features_are_read_as_one_table(log_url: str) -> None:
    log = PredictionLog(log_url)
    log.append([entry(T0, quality={"snr_db": 21.5})])
    log.append([entry(T0 + timedelta(minutes=1), quality={"snr_db": float("nan"), "flatline_share": 0.25})])
    frame = log.read().frame
    assert frame["quality.snr_db"].dtype == np.float64
    assert frame["quality.snr_db"].iloc[0] == 21.5 and math.isnan(frame["quality.snr_db"].iloc[1])
    assert (
        math.isnan(frame["quality.flatline_share"].iloc[0])
        and frame["quality.flatline_share"].iloc[1] == 0.25
    )
    assert [r["quality"] for r in entry_records(frame)] == [
        {"snr_db": 21.5, "flatline_share": None},
        {"snr_db": None, "flatline_share": 0.25},
    ]


def test_prune_removes_the_days_older_than_the_retention(log_url: str) -> None:
    log = PredictionLog(log_url)
    log.append([entry(T0 + i * DAY, seed=i) for i in range(5)])
    removed = log.prune(2, now=T0 + 4 * DAY)
    assert [p.rsplit("/", 1)[-1] for p in removed] == ["date=2026-03-01", "date=2026-03-02"]
    assert [(t - T0).days for t in log.read().frame["time"]] == [2, 3, 4]
    assert log.prune(2, now=T0 + 4 * DAY) == []
    with pytest.raises(ValueError, match="at least 1"):
        log.prune(0)


def test_an_absent_log_is_an_empty_window(log_url: str) -> None:
    window = PredictionLog(log_url).read(model=TASK)
    assert window.frame.empty and window.skipped == []
    assert {"time", "model_ref", "probabilities"} <= set(window.frame.columns)
    assert entry_records(window.frame) == []
    assert volume(window.frame).empty and list(volume(window.frame).columns) == [
        "date",
        "model_ref",
        "source",
        "n",
    ]


def test_an_unreachable_destination_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("a file where the log's folder should be")
    url = str(tmp_path / "blocker" / "predictions")
    log = PredictionLog(url)
    with pytest.raises(PredictionLogError, match=f"could not write to the prediction log at {url}"):
        log.append([entry()])
    with pytest.raises(PredictionLogError, match="could not list"):
        log.read()
    with pytest.raises(PredictionLogError, match="nosuchfs://x"):
        PredictionLog("nosuchfs://x/predictions")


def test_volume_counts_entries_per_day_model_and_source(log_url: str) -> None:
    log = PredictionLog(log_url)
    log.append([entry(T0), entry(T0, source="batch"), entry(T0 + timedelta(hours=2)), entry(T0 + DAY)])
    counts = volume(log.read().frame)
    assert counts.to_dict("records") == [
        {"date": "2026-03-01", "model_ref": f"{TASK}@3", "source": "batch", "n": 1},
        {"date": "2026-03-01", "model_ref": f"{TASK}@3", "source": "served", "n": 2},
        {"date": "2026-03-02", "model_ref": f"{TASK}@3", "source": "served", "n": 1},
    ]


def _parquet(frame: pd.DataFrame) -> bytes:
    import io

    sink = io.BytesIO()
    frame.to_parquet(sink)
    return sink.getvalue()
