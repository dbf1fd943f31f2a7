"""Broken records through ingest: each one quarantined with its reason and its files, the good ones stored,
nothing else written; a drop or dataset that cannot be used leaves no store behind."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from components.config import IngestParams, Settings
from components.io.ingest import ingest
from components.io.store import DatasetStore
from tests.badinput.corpus import BROKEN, GOOD, broken_drop
from tests.conftest import QUIET, ingest_workspace
from tests.finetune.workspace import run_cli


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    root = tmp_path / "workspace"
    root.mkdir()
    return Settings(workspace=root, registry_url=f"sqlite:///{tmp_path}/r.db", patient_salt="x")  # type: ignore[arg-type]


def test_every_broken_record_is_quarantined_with_its_reason_and_files(
    tmp_path: Path, settings: Settings
) -> None:
    drop = broken_drop(tmp_path / "drop")
    summary = ingest(ingest_workspace(settings, IngestParams(workers=1)), drop, fmt="wfdb", options=QUIET)
    reasons = {item["record"]: item["reason"] for item in summary.quarantine_reasons}
    assert set(reasons) == set(BROKEN)
    for name, (_, _, expected) in BROKEN.items():
        assert expected in reasons[name], (name, reasons[name])
        assert "Traceback" not in reasons[name]
    assert (summary.seen, summary.ingested, summary.duplicates) == (len(BROKEN) + len(GOOD), len(GOOD), 0)

    store = DatasetStore.open(settings.data_dir / "demo")
    assert sorted(store.manifest["source_record"]) == sorted(GOOD)
    signals = store.read(np.arange(len(store)))
    assert np.isfinite(signals).all() and np.abs(signals).max() < 100  # mV: nothing mis-calibrated got in
    quarantine = store.quarantine.set_index("source_record")
    assert set(quarantine.index) == set(BROKEN)
    for name in BROKEN:
        copy = store.root / quarantine.loc[name, "stored_copy"]
        assert (copy / f"{name}.hea").is_file(), name  # the steward gets the files, not only the reason
    assert quarantine.loc["repeated_lead", "reason"] == "lead II is given twice ('II' and 'II')"

    again = ingest(ingest_workspace(settings, IngestParams(workers=1)), drop, fmt="wfdb", options=QUIET)
    assert (again.ingested, again.quarantined, again.duplicates) == (0, 0, len(GOOD))
    assert len(pd.read_parquet(store.root / "quarantine.parquet")) == len(BROKEN)


def test_a_drop_of_broken_records_only_stores_no_signal(tmp_path: Path, settings: Settings) -> None:
    drop = tmp_path / "drop"
    broken_drop(drop)
    for name in GOOD:
        (drop / f"{name}.hea").unlink()
        (drop / f"{name}.dat").unlink()
    summary = ingest(ingest_workspace(settings, IngestParams(workers=1)), drop, fmt="wfdb", options=QUIET)
    assert (summary.ingested, summary.quarantined) == (0, len(BROKEN))
    store = DatasetStore.open(settings.data_dir / "demo")
    assert len(store) == 0 and len(store.quarantine) == len(BROKEN)
    assert not list((store.root / "signals").glob("*.npy"))


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ingest", "{missing}", "--no-version"], "drop folder not found"),
        (["ingest", "{drop}", "--dataset", "../outside", "--no-version"], "not a dataset name"),
        (["ingest", "{drop}", "--format", "hl7", "--no-version"], "--format must be one of"),
    ],
    ids=["missing-drop", "dataset-outside-data", "unknown-format"],
)
def test_cli_refuses_a_drop_or_dataset_it_cannot_use_and_writes_nothing(
    tmp_path: Path, settings: Settings, args: list[str], message: str
) -> None:
    drop = broken_drop(tmp_path / "drop")
    argv = [a.format(missing=tmp_path / "nowhere", drop=drop) for a in args]
    code, out, err = run_cli(argv, settings)
    assert code == 2, (out, err)
    assert message in err and "Traceback" not in err
    if "not found" in message:
        _one_error_line(err)
    assert not (settings.workspace / "data").exists()
    assert not (tmp_path / "outside").exists()


def test_cli_ingest_prints_each_quarantined_record_with_its_reason(
    tmp_path: Path, settings: Settings
) -> None:
    drop = broken_drop(tmp_path / "drop")
    (settings.workspace / "params.yaml").write_text("ingest: {workers: 1}\n")
    code, out, err = run_cli(
        ["ingest", str(drop), "--format", "wfdb", "--no-version", "--json", "--strict"], settings
    )
    assert code == 1, err  # --strict: something was quarantined
    summary = json.loads(out)
    assert summary["quarantined"] == len(BROKEN) and summary["ingested"] == len(GOOD)
    reasons = {item["record"]: item["reason"] for item in summary["quarantine_reasons"]}
    assert reasons["repeated_lead_alias"] == "lead I is given twice ('I' and 'i')"
