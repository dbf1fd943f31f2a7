"""Ingest's fast paths give exactly what the plain float64 path gives, on real records.

The float32 canonical signal computed straight from the digital samples must be bit-identical to rounding
the float64 physical values (what ``wfdb.rdsamp`` returns) to float32, so content hashes and stored values
do not depend on which path a record took.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import wfdb

from components.config import IngestParams, Settings
from components.io.ingest import ingest
from components.io.prepare import PreparedRecord, RejectedRecord, hash_signal, prepare, to_standard_leads
from components.io.sources import RecordRef
from components.io.store import DatasetStore, ShardWriter, write_slot
from components.io.wfdb_header import parse_header
from components.io.wfdb_reader import DigitalRecord, RecordError, float32_exact, read_record, read_samples
from tests.conftest import FIXTURES, QUIET, SAMPLES, SHARED_DATA, ingest_workspace
from tests.ingest.records import ptbxl_record, write_variant

REPO_RECORDS = (
    sorted(p.with_suffix("") for p in FIXTURES.rglob("*.hea"))
    + sorted(p.with_suffix("") for p in SAMPLES.rglob("*.hea"))[:60]
)


def _float64_path(base: Path) -> tuple[np.ndarray, str]:
    """The reference: float64 physical values → standard leads → float32, and its content hash."""
    raw = read_record(base)
    signal, mask = to_standard_leads(raw.signal, raw.sig_names, raw.units)
    single = signal.astype(np.float32)
    return single, hash_signal(single, mask, raw.fs)


def _prepared(base: Path, target_fs: int, n_samples: int) -> PreparedRecord:
    result = prepare(RecordRef("wfdb", base.name, str(base)), target_fs, n_samples)
    assert isinstance(result, PreparedRecord), result
    return result


@pytest.mark.parametrize("base", REPO_RECORDS, ids=lambda p: p.name)
def test_direct_float32_equals_rounded_float64(base: Path) -> None:
    record = read_samples(base)
    raw = read_record(base)
    n, fs = raw.signal.shape[0], round(raw.fs)
    try:
        reference, expected_hash = _float64_path(base)
    except RecordError as exc:  # not an ECG record: both paths refuse it with the same reason
        rejected = prepare(RecordRef("wfdb", base.name, str(base)), fs, n)
        assert isinstance(rejected, RejectedRecord) and rejected.reason == str(exc)
        return
    prepared = _prepared(base, fs, n)
    if isinstance(record, DigitalRecord) and abs(raw.fs - fs) < 1e-9:
        np.testing.assert_array_equal(prepared.signal.view(np.uint32), reference.view(np.uint32))
    assert prepared.content_hash == expected_hash


def test_direct_path_with_gaps_reordered_and_renamed_leads(tmp_path: Path) -> None:
    """NaN gaps, leads in another order under other spellings, a reduced lead set, and µV units (which
    take the float64 path): all hash and store as the float64 path does."""
    source = ptbxl_record("00001")
    signal, fields = wfdb.rdsamp(str(source))
    signal[100:110, 3] = np.nan
    wfdb.wrsamp(
        "gaps",
        fs=fields["fs"],
        units=fields["units"],
        sig_name=fields["sig_name"],
        p_signal=signal,
        fmt=["16"] * 12,
        adc_gain=[1000.0] * 12,
        baseline=[7] * 12,
        write_dir=str(tmp_path),
    )
    variants = [
        tmp_path / "gaps",
        write_variant(source, tmp_path, "reordered", [6, 0, 1, 11], ["v1", "i", "ii", "V6"]),
        write_variant(source, tmp_path, "micro", [0, 1], ["I", "II"], units="uV"),
    ]
    for base in variants:
        reference, expected_hash = _float64_path(base)
        prepared = _prepared(base, 100, reference.shape[1])
        np.testing.assert_array_equal(prepared.signal.view(np.uint32), reference.view(np.uint32))
        assert prepared.content_hash == expected_hash, base.name
    assert np.isnan(_prepared(variants[0], 100, 1000).signal[3, 100:110]).all()


def test_float32_exactness_conditions() -> None:
    zero, thousand = np.zeros(2), np.full(2, 1000.0)
    assert float32_exact("16", zero, thousand)
    assert not float32_exact("16", zero, np.array([1000.0, 1000.1]))  # 1000.1 is not a float32 number
    assert not float32_exact("32", zero, thousand)  # 32-bit samples do not fit float32 exactly
    assert not float32_exact("16", np.array([0.0, 2.0**24]), thousand)
    assert float32_exact("24", zero, thousand)


def test_headers_of_one_layout_share_a_parsed_layout() -> None:
    first = (SAMPLES / "records100/00000/00001_lr.hea").read_text()
    second = (SAMPLES / "records100/00000/00002_lr.hea").read_text()
    a, b = parse_header(first), parse_header(second)
    assert a.layout is b.layout  # initial values and checksums differ, the layout does not
    assert (a.file_names, b.file_names) == (("00001_lr.dat",), ("00002_lr.dat",))
    assert [s.file_name for s in b.signals] == ["00002_lr.dat"] * 12


def test_ptbxl_rows_with_empty_or_odd_cells_are_ingested(tmp_path: Path) -> None:
    """Empty SCP codes, an unknown fold and a text sex code do not stop the drop."""
    drop = tmp_path / "drop"
    for ecg_id in ("00001", "00002", "00003"):
        for ext in (".hea", ".dat"):
            target = drop / f"records100/00000/{ecg_id}_lr{ext}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(SAMPLES / f"records100/00000/{ecg_id}_lr{ext}", target)
    with (SAMPLES / "ptbxl_database.csv").open(newline="") as handle:
        reader = csv.DictReader(handle)
        columns, rows = list(reader.fieldnames or []), [next(reader) for _ in range(3)]
    rows[0]["strat_fold"] = "11"
    rows[1]["scp_codes"] = ""
    rows[2]["sex"] = "F"
    with (drop / "ptbxl_database.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(rows)
    settings = Settings(workspace=tmp_path / "ws", patient_salt="x")  # type: ignore[arg-type]
    summary = ingest(ingest_workspace(settings, IngestParams(workers=1)), drop, options=QUIET)
    assert (summary.ingested, summary.quarantined) == (3, 0)
    manifest = DatasetStore.open(settings.data_dir / "demo").manifest.set_index("source_record")
    assert manifest.loc["records100/00000/00002_lr", "labels"] == "{}"
    assert manifest.loc["records100/00000/00001_lr", "split"] in {"train", "val", "test"}
    assert manifest.loc["records100/00000/00003_lr", "sex"] == "female"


def test_background_flush_writes_the_same_shard(tmp_path: Path) -> None:
    records = np.random.default_rng(0).normal(size=(10, 12, 50)).astype(np.float32)
    shards = []
    for flush in (False, True):
        root = tmp_path / str(flush)
        writer = ShardWriter(root, 50, 100, slot_records=4, flush_while_writing=flush)
        for start in range(0, 10, 4):
            shard, first = writer.reserve()
            part = records[start : start + 4]
            write_slot(shard, first, part)
            writer.commit(shard, first, list(range(len(part))))
        writer.close()
        shards.append((root / "signals/shard-00000.npy").read_bytes())
    assert shards[0] == shards[1]
    np.testing.assert_array_equal(np.load(tmp_path / "True/signals/shard-00000.npy"), records)


def test_shared_generic_drop_quarantines_instead_of_crashing(tmp_path: Path) -> None:
    """wfdb's own sample records (multi-segment, annotations only, exotic formats) as a generic drop."""
    drop = SHARED_DATA / "wfdb_python_sample_data"
    if not drop.is_dir():
        pytest.skip("../shared/data is not beside this checkout")
    settings = Settings(workspace=tmp_path, patient_salt="x")  # type: ignore[arg-type]
    summary = ingest(ingest_workspace(settings, IngestParams(workers=1, target_fs=250)), drop, fmt="wfdb")
    assert summary.ingested > 0 and summary.quarantined > 0
    assert summary.seen == summary.ingested + summary.duplicates + summary.quarantined
