"""Ingest of real drops into the canonical store: layouts, leads, units, rates, splits, quarantine."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import wfdb
from pydantic import SecretStr
from scipy.signal import resample_poly

from components.config import IngestParams, Settings
from components.io.ingest import ingest
from components.io.leads import STANDARD_LEADS
from components.io.sources import detect_format
from components.io.store import MANIFEST_COLUMNS, DatasetStore
from tests.conftest import FIXTURES, QUIET, SAMPLES, ingest_workspace
from tests.ingest.records import broken_drop, copy_record, ptbxl_record, write_variant


def _store(settings: Settings, dataset: str = "demo") -> DatasetStore:
    return DatasetStore.open(settings.data_dir / dataset)


def test_formats_are_detected() -> None:
    assert detect_format(SAMPLES) == "ptbxl"
    assert detect_format(FIXTURES / "cinc") == "cinc"
    assert detect_format(FIXTURES / "wfdb_formats") == "wfdb"


def test_ptbxl_drop(workspace: Settings, ingest_params: IngestParams) -> None:
    summary = ingest(ingest_workspace(workspace, ingest_params), SAMPLES, options=QUIET)
    n_records = len(list((SAMPLES / "records100").rglob("*.hea")))
    assert n_records >= 300
    assert (summary.format, summary.ingested, summary.quarantined) == ("ptbxl", n_records, 0)
    store = _store(workspace)
    manifest = store.manifest
    assert tuple(manifest.columns) == MANIFEST_COLUMNS
    assert manifest["record_id"].is_unique and manifest["content_hash"].is_unique
    assert store.lead_masks().all()
    # values in mV equal rdsamp's (no resampling at 100 Hz; float32 storage)
    first = manifest.index[manifest["source_record"] == "records100/00000/00001_lr"][0]
    reference, _ = wfdb.rdsamp(str(ptbxl_record("00001")))
    np.testing.assert_allclose(store.read([first])[0], reference.T, atol=1e-6)
    row = manifest.loc[first]
    assert row["report"] == "sinusrhythmus periphere niederspannung"
    assert json.loads(row["labels"]) == {"NORM": 100.0, "LVOLT": 0.0, "SR": 0.0}
    assert (row["label_system"], row["sex"], row["age"], row["device"]) == ("SCP", "female", 56.0, "CS-12 E")
    annotations = json.loads(row["annotations"])
    assert annotations["strat_fold"] == 3 and row["split"] == "train"


def test_strat_fold_splits_and_no_patient_leakage(workspace: Settings, ingest_params: IngestParams) -> None:
    ingest(ingest_workspace(workspace, ingest_params), SAMPLES, options=QUIET)
    manifest = _store(workspace).manifest
    folds = manifest["annotations"].map(lambda a: json.loads(a)["strat_fold"])
    expected = folds.map(lambda f: "val" if f == 9 else "test" if f == 10 else "train")
    assert (manifest["split"] == expected).all()
    assert set(manifest["split"]) == {"train", "val", "test"}
    assert manifest.groupby("patient_key")["split"].nunique().max() == 1


def test_raw_patient_ids_never_reach_the_store(workspace: Settings, ingest_params: IngestParams) -> None:
    ingest(ingest_workspace(workspace, ingest_params), SAMPLES, options=QUIET)
    raw_ids = pd.read_csv(SAMPLES / "ptbxl_database.csv")["patient_id"].map(lambda v: str(int(v)))
    store = _store(workspace)
    assert not set(raw_ids) & set(store.manifest["patient_key"])
    # no raw id (5 digits: shorter ones collide with ecg ids and row numbers) as a number of its own in any
    # cell or in the file's metadata; not the file's bytes, where salted hex keys hold digit runs by chance
    metadata = pq.read_metadata(workspace.data_dir / "demo" / "manifest.parquet").metadata or {}
    texts = [str(v) for column in store.manifest.columns for v in store.manifest[column]]
    texts += [v.decode(errors="replace") for v in metadata.values()]
    numbers = {n for text in texts for n in re.findall(r"(?<![0-9A-Za-z.])\d+(?![0-9A-Za-z.])", text)}
    assert not {raw for raw in raw_ids if len(raw) >= 5} & numbers
    # same salt → same keys; another salt → other keys
    other = workspace.model_copy(
        update={"patient_salt": SecretStr("another-salt"), "workspace": workspace.workspace / "o"}
    )
    ingest(ingest_workspace(other, ingest_params), SAMPLES, options=QUIET)
    assert not set(_store(other).manifest["patient_key"]) & set(store.manifest["patient_key"])


def test_cinc_both_header_dialects_resampled(workspace: Settings, ingest_params: IngestParams) -> None:
    summary = ingest(
        ingest_workspace(workspace, ingest_params), FIXTURES / "cinc", dataset="cinc", options=QUIET
    )
    assert (summary.format, summary.ingested, summary.quarantined) == ("cinc", 6, 0)
    store = _store(workspace, "cinc")
    rows = store.manifest.set_index("source_record")
    challenge = rows.loc["cpsc2018/A0001"]  # CinC layout: "#Age: 74"
    rewritten = rows.loc["georgia/E07500"]  # wfdb-rewritten: "# Age: 78", 16x1+24, 1000.0(0)/mV
    assert (challenge["age"], challenge["sex"], json.loads(challenge["labels"])) == (
        74.0,
        "male",
        {"59118001": 100.0},
    )
    assert (rewritten["age"], rewritten["sex"]) == (78.0, "male")
    assert set(json.loads(rewritten["labels"])) == {"67741000119109", "426177001"}
    assert rewritten["label_system"] == "SNOMED" and rewritten["site"] == "georgia"
    assert np.isnan(rows.loc["georgia/E00001"]["age"])  # "#Age: NaN"
    assert challenge["fs_original"] == 500 and challenge["n_samples_original"] == 7500
    # 500 Hz → 100 Hz with a polyphase filter, first 10 s
    reference, _ = wfdb.rdsamp(str(FIXTURES / "cinc/cpsc2018/A0001"))
    expected = resample_poly(reference.T, 1, 5, axis=-1)[:, :1000]
    position = int(np.flatnonzero(store.manifest["source_record"] == "cpsc2018/A0001")[0])
    np.testing.assert_allclose(store.read([position])[0], expected, atol=1e-5)


def test_500_hz_target(workspace: Settings) -> None:
    params = IngestParams(workers=1, target_fs=500)
    summary = ingest(ingest_workspace(workspace, params), FIXTURES / "ptbxl500", dataset="hr", options=QUIET)
    assert summary.ingested == 5
    store = _store(workspace, "hr")
    assert (store.info.fs, store.info.n_samples) == (500, 5000)
    assert store.manifest["source_record"].str.startswith("records500/").all()
    reference, _ = wfdb.rdsamp(str(FIXTURES / "ptbxl500/records500/00000/00001_hr"))
    np.testing.assert_allclose(store.read([0])[0], reference.T, atol=1e-6)


def test_lead_spellings_reduced_and_single_lead(
    workspace: Settings, ingest_params: IngestParams, tmp_path: Path
) -> None:
    drop = tmp_path / "drop"
    source = ptbxl_record("00001")
    reference, _ = wfdb.rdsamp(str(source))
    shuffled = [5, 0, 11, 3, 1, 7, 2, 10, 4, 9, 6, 8]
    names = ["avf", "i", "v6", "AVR", "II", "v2", "iii", "V5", "aVL", "V4", "v1", "V3"]
    write_variant(source, drop, "spelled", shuffled, names)
    write_variant(source, drop, "limb", [0, 1, 2, 3, 4, 5], ["I", "II", "III", "aVR", "aVL", "aVF"])
    write_variant(source, drop, "single", [1], ["MLII"])
    write_variant(source, drop, "microvolts", [0], ["I"], units="uV")
    copy_record(FIXTURES / "wfdb_formats/3000003_0003", drop, "monitor")  # real 125 Hz format-80 II + 'V'
    summary = ingest(ingest_workspace(workspace, ingest_params), drop, dataset="leads", options=QUIET)
    assert (summary.ingested, summary.duplicates, summary.quarantined) == (5, 0, 0)
    store = _store(workspace, "leads")
    rows = {r: i for i, r in enumerate(store.manifest["source_record"])}
    masks = store.lead_masks()
    assert masks[rows["spelled"]].all()
    np.testing.assert_allclose(store.read([rows["spelled"]])[0], reference.T, atol=1e-6)
    assert masks[rows["limb"]].tolist() == [True] * 6 + [False] * 6
    assert not store.read([rows["limb"]])[0][6:].any()
    assert masks[rows["single"]].tolist() == [lead == "II" for lead in STANDARD_LEADS]
    np.testing.assert_allclose(store.read([rows["single"]])[0][1], reference[:, 1], atol=1e-6)
    np.testing.assert_allclose(store.read([rows["microvolts"]])[0][0], reference[:, 0], atol=1e-6)
    monitor = store.manifest.iloc[rows["monitor"]]
    assert masks[rows["monitor"]].sum() == 1 and monitor["fs_original"] == 125
    assert monitor["n_valid_samples"] == -(-1028 * 100 // 125)  # polyphase output: ceil(n · up / down)


def test_idempotent_and_incremental(workspace: Settings, ingest_params: IngestParams, tmp_path: Path) -> None:
    first = ingest(ingest_workspace(workspace, ingest_params), SAMPLES, options=QUIET)
    manifest_before = (workspace.data_dir / "demo" / "manifest.parquet").read_bytes()
    again = ingest(ingest_workspace(workspace, ingest_params), SAMPLES, options=QUIET)
    assert (again.ingested, again.duplicates, again.changed) == (0, first.ingested, False)
    assert (workspace.data_dir / "demo" / "manifest.parquet").read_bytes() == manifest_before
    drop = tmp_path / "mixed"
    for ecg_id in ("00001", "00002"):
        copy_record(ptbxl_record(ecg_id), drop, f"old{ecg_id}")
    copy_record(FIXTURES / "cinc/georgia/E07500", drop, "new_e07500")
    mixed = ingest(ingest_workspace(workspace, ingest_params), drop, options=QUIET)
    assert (mixed.ingested, mixed.duplicates) == (1, 2)
    store = _store(workspace)
    assert len(store) == first.ingested + 1
    assert sorted(p.name for p in (workspace.data_dir / "demo" / "signals").iterdir()) == [
        "shard-00000.npy",
        "shard-00001.npy",
    ]


def test_broken_records_are_quarantined_and_nothing_stops(
    workspace: Settings, ingest_params: IngestParams, tmp_path: Path
) -> None:
    drop = tmp_path / "broken"
    expected = broken_drop(drop)
    summary = ingest(ingest_workspace(workspace, ingest_params), drop, dataset="broken", options=QUIET)
    assert summary.ingested == 1
    store = _store(workspace, "broken")
    quarantine = store.quarantine.set_index("source_record")
    assert set(quarantine.index) == set(expected)
    for record, fragment in expected.items():
        assert fragment in quarantine.loc[record, "reason"], (record, quarantine.loc[record, "reason"])
        assert quarantine.loc[record, "reason"]
    # the broken files are kept with the store; nothing from outside the drop is copied
    kept = workspace.data_dir / "broken" / quarantine.loc["truncated", "stored_copy"]
    assert sorted(p.name for p in kept.iterdir()) == ["truncated.dat", "truncated.hea"]
    assert quarantine.loc["../../etc/passwd", "stored_copy"] == ""
    good = store.manifest.iloc[0]
    assert (good["report"], json.loads(good["labels"]), good["label_system"]) == (
        "sinus rhythm normal ECG",
        {"NORM": 100.0},
        "LOCAL",
    )
    # re-ingesting the same broken drop adds no duplicate quarantine rows
    again = ingest(ingest_workspace(workspace, ingest_params), drop, dataset="broken", options=QUIET)
    assert again.quarantined == 0 and len(_store(workspace, "broken").quarantine) == len(expected)


def test_parallel_workers_give_the_same_store(workspace: Settings) -> None:
    one = workspace.model_copy(update={"workspace": workspace.workspace / "one"})
    two = workspace.model_copy(update={"workspace": workspace.workspace / "two"})
    ingest(ingest_workspace(one, IngestParams(workers=1)), SAMPLES, options=QUIET)
    ingest(ingest_workspace(two, IngestParams(workers=2, chunk_records=32)), SAMPLES, options=QUIET)
    a, b = _store(one), _store(two)
    columns = ["record_id", "patient_key", "split", "shard", "shard_index"]
    pd.testing.assert_frame_equal(a.manifest[columns], b.manifest[columns])
    np.testing.assert_array_equal(a.shard("signals/shard-00000.npy"), b.shard("signals/shard-00000.npy"))


def test_store_parameters_cannot_change_under_a_dataset(
    workspace: Settings, ingest_params: IngestParams
) -> None:
    from components.io.store import StoreError

    ingest(ingest_workspace(workspace, ingest_params), FIXTURES / "cinc", dataset="cinc", options=QUIET)
    with pytest.raises(StoreError, match="ingest into a new --dataset"):
        ingest(
            ingest_workspace(workspace, IngestParams(workers=1, target_fs=500)),
            FIXTURES / "cinc",
            dataset="cinc",
            options=QUIET,
        )


def test_manifest_follows_the_schema_in_schemas(workspace: Settings, ingest_params: IngestParams) -> None:
    import jsonschema

    from components.config import SCHEMAS_DIR

    schema = json.loads((SCHEMAS_DIR / "manifest.schema.json").read_text())
    assert list(schema["properties"]) == list(MANIFEST_COLUMNS)
    ingest(ingest_workspace(workspace, ingest_params), FIXTURES / "cinc", dataset="cinc", options=QUIET)
    ingest(ingest_workspace(workspace, ingest_params), SAMPLES, options=QUIET)
    for dataset in ("cinc", "demo"):
        manifest = _store(workspace, dataset).manifest
        for row in json.loads(manifest.to_json(orient="records", date_format="iso")):
            jsonschema.validate(row, schema)
        assert manifest["labels"].map(lambda text: isinstance(json.loads(text), dict)).all()


def test_pool_path_with_duplicates_and_small_shards(workspace: Settings, tmp_path: Path) -> None:
    """Workers write chunks into reserved shard slots; the parent packs kept rows down past duplicates."""
    drop = tmp_path / "drop"
    for name, ecg_id in (
        ("a", "00001"),
        ("a_again", "00001"),
        ("b", "00002"),
        ("c", "00003"),
        ("d", "00004"),
    ):
        copy_record(ptbxl_record(ecg_id), drop, name)
    params = IngestParams(workers=2, chunk_records=2, shard_max_records=3)  # 2-record slots, 2 per shard
    summary = ingest(ingest_workspace(workspace, params), drop, dataset="pool", options=QUIET)
    assert (summary.ingested, summary.duplicates) == (4, 1)
    store = _store(workspace, "pool")
    # chunks [a, a_again] [b, c] [d]: the duplicate leaves the first slot half full
    assert store.manifest["shard"].tolist() == [
        "signals/shard-00000.npy",
        "signals/shard-00001.npy",
        "signals/shard-00001.npy",
        "signals/shard-00002.npy",
    ]
    assert [len(store.shard(f"signals/shard-0000{i}.npy")) for i in range(3)] == [1, 2, 1]
    for position, ecg_id in enumerate(("00001", "00002", "00003", "00004")):
        reference, _ = wfdb.rdsamp(str(ptbxl_record(ecg_id)))
        np.testing.assert_allclose(store.read([position])[0], reference.T, atol=1e-6)


def test_rejects_and_duplicates_inside_a_chunk_are_packed(workspace: Settings, tmp_path: Path) -> None:
    """A slot with a broken record and a duplicate in the middle: kept records move down, in order."""
    drop = tmp_path / "drop"
    copy_record(ptbxl_record("00001"), drop, "a")
    broken = copy_record(ptbxl_record("00002"), drop, "b_broken")
    broken.with_suffix(".dat").write_bytes(broken.with_suffix(".dat").read_bytes()[:100])
    copy_record(ptbxl_record("00001"), drop, "c_again")
    copy_record(ptbxl_record("00003"), drop, "d")
    copy_record(ptbxl_record("00004"), drop, "e")
    summary = ingest(
        ingest_workspace(workspace, IngestParams(workers=1, chunk_records=8)),
        drop,
        dataset="packed",
        options=QUIET,
    )
    assert (summary.ingested, summary.duplicates, summary.quarantined) == (3, 1, 1)
    store = _store(workspace, "packed")
    assert store.manifest["shard_index"].tolist() == [0, 1, 2]
    assert len(store.shard("signals/shard-00000.npy")) == 3
    for position, ecg_id in enumerate(("00001", "00003", "00004")):
        reference, _ = wfdb.rdsamp(str(ptbxl_record(ecg_id)))
        np.testing.assert_allclose(store.read([position])[0], reference.T, atol=1e-6)
