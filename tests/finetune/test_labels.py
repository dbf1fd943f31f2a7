"""Targets from the manifest: checked against the PTB-XL CSVs themselves and the CinC headers."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from components.config import IngestParams, Settings
from components.io.ingest import ingest
from components.io.store import DatasetStore
from components.tasks.labels import select_records, task_targets
from components.tasks.mapping import load_mapping
from components.tasks.spec import TaskSpec, load_task
from tests.conftest import QUIET, ingest_workspace


def _ptbxl_rows(samples_dir: Path, store: DatasetStore) -> pd.DataFrame:
    """The samples/ CSV rows in the store's manifest order (joined on PTB-XL's ecg_id)."""
    csv = pd.read_csv(samples_dir / "ptbxl_database.csv").set_index("ecg_id")
    ecg_ids = [json.loads(a)["ecg_id"] for a in store.manifest["annotations"]]
    return csv.loc[ecg_ids]


def _expected_superclasses(rows: pd.DataFrame, statements: pd.DataFrame, min_likelihood: float) -> np.ndarray:
    classes = ["NORM", "MI", "STTC", "CD", "HYP"]
    diagnostic = statements[statements["diagnostic"] == 1]["diagnostic_class"]
    out = np.zeros((len(rows), 5), dtype=np.int8)
    for i, codes in enumerate(rows["scp_codes"]):
        for code, likelihood in ast.literal_eval(codes).items():
            if likelihood >= min_likelihood and code in diagnostic.index:
                out[i, classes.index(diagnostic[code])] = 1
    return out


@pytest.mark.parametrize("min_likelihood", [0.0, 50.0, 100.0])
def test_superclass_targets_match_scp_statements_csv(
    demo_store: DatasetStore, samples_dir: Path, min_likelihood: float
) -> None:
    """Aggregation by diagnostic class, computed independently from samples/scp_statements.csv."""
    statements = pd.read_csv(samples_dir / "scp_statements.csv", index_col=0)
    rows = _ptbxl_rows(samples_dir, demo_store)
    base = load_task("ptbxl-superdiagnostic")
    spec = base.model_copy(
        update={"positive_rule": base.positive_rule.model_copy(update={"min_likelihood": min_likelihood})}
    )
    table = task_targets(demo_store.manifest, spec)
    expected = _expected_superclasses(rows, statements, min_likelihood)
    np.testing.assert_array_equal(table.targets, expected)
    np.testing.assert_array_equal(table.usable, expected.any(axis=1))  # unlabelled: exclude
    assert set(table.reasons) <= {"", "none of the task's labels", "no label codes at the likelihood rule"}
    if min_likelihood == 0.0:
        assert table.targets.sum(0).tolist() == [242, 51, 72, 57, 30]  # samples/: 393 records


def test_rhythm_targets_count_rhythm_statements_whatever_their_likelihood(
    demo_store: DatasetStore, samples_dir: Path
) -> None:
    rows = _ptbxl_rows(samples_dir, demo_store)
    spec = load_task("ptbxl-rhythm")
    table = task_targets(demo_store.manifest, spec)
    for j, label in enumerate(spec.label_names):
        expected = np.array([label in ast.literal_eval(c) for c in rows["scp_codes"]])
        np.testing.assert_array_equal(table.targets[:, j].astype(bool), expected)
    assert table.targets[:, 0].sum() == 321  # SR, coded with likelihood 0 in PTB-XL


@pytest.fixture(scope="module")
def cinc_store(tmp_path_factory: pytest.TempPathFactory, fixtures_dir: Path) -> DatasetStore:
    root = tmp_path_factory.mktemp("cinc")
    settings = Settings(workspace=root, registry_url=f"sqlite:///{root}/r.db", patient_salt="x")  # type: ignore[arg-type]
    ingest(
        ingest_workspace(settings, IngestParams(workers=1)),
        fixtures_dir / "cinc",
        dataset="cinc",
        options=QUIET,
    )
    return DatasetStore.open(root / "data" / "cinc")


def _by_record(store: DatasetStore, spec: TaskSpec) -> dict[str, list[str]]:
    table = task_targets(store.manifest, spec)
    names = [Path(r).name for r in store.manifest["source_record"]]
    return {
        n: [lab for j, lab in enumerate(spec.label_names) if table.targets[i, j]] for i, n in enumerate(names)
    }


def test_cinc_snomed_records_get_ptbxl_superclasses_through_the_mapping(cinc_store: DatasetStore) -> None:
    """The six real CinC headers' #Dx codes, read by hand:
    A0001 RBBB; Q0026 PAC, atrial tachycardia, nonspecific ST-T; Q0033 LVH, LBBB, nonspecific ST-T;
    E00001 sinus rhythm only; E07500 left atrial enlargement, sinus bradycardia; JS20000 PAC, sinus
    tachycardia, nonspecific IVCD, ST changes."""
    assert _by_record(cinc_store, load_task("ptbxl-superdiagnostic")) == {
        "A0001": ["CD"],
        "Q0026": ["STTC"],
        "Q0033": ["STTC", "CD", "HYP"],
        "E00001": ["NORM"],
        "E07500": ["HYP"],
        "JS20000": ["STTC", "CD"],
    }
    table = task_targets(cinc_store.manifest, load_task("ptbxl-superdiagnostic"))
    assert table.mapped.all() and table.usable.all()


def test_cinc_task_reads_snomed_directly_and_ptbxl_through_the_mapping(
    cinc_store: DatasetStore, demo_store: DatasetStore, samples_dir: Path
) -> None:
    spec = load_task("cinc-dx")
    got = _by_record(cinc_store, spec)
    assert got["A0001"] == ["RBBB"] and got["E07500"] == ["SB"] and got["Q0033"] == ["LBBB", "NSSTTA"]
    assert got["JS20000"] == ["STach", "PAC"]
    table = task_targets(demo_store.manifest, spec)  # PTB-XL (SCP) records, unlabelled ones are negatives
    assert table.usable.all() and table.mapped.all()
    rows = _ptbxl_rows(samples_dir, demo_store)
    has = {
        code: np.array([code in ast.literal_eval(c) for c in rows["scp_codes"]]) for code in ("AFIB", "CLBBB")
    }
    np.testing.assert_array_equal(table.targets[:, spec.label_names.index("AF")].astype(bool), has["AFIB"])
    np.testing.assert_array_equal(table.targets[:, spec.label_names.index("LBBB")].astype(bool), has["CLBBB"])


def test_mapping_directions_and_sole_rule() -> None:
    mapping = load_mapping("scp_snomed")
    assert mapping.translate({"426783006": 100.0}, "SNOMED", "SCP") == {"NORM": 100.0, "SR": 100.0}
    assert "NORM" not in mapping.translate({"426783006": 100.0, "59118001": 100.0}, "SNOMED", "SCP")
    assert mapping.translate({"IMI": 80.0}, "SCP", "SNOMED") == {"164865005": 80.0}
    assert "426783006" not in mapping.translate({"NORM": 100.0}, "SCP", "SNOMED")  # NORM is to_scp only


def test_records_without_the_needed_leads_or_excluded_by_validation_are_left_out(
    demo_store: DatasetStore,
) -> None:
    spec = load_task("ptbxl-superdiagnostic-lead-ii")
    masks = demo_store.lead_masks().copy()
    masks[:10, 1] = False  # the first ten records lose lead II
    excluded = frozenset(demo_store.manifest["record_id"].iloc[10:15])
    chosen = select_records(demo_store.manifest, masks, spec, split=None, excluded_ids=excluded)
    assert not set(range(15)) & set(chosen.rows.tolist())
    assert chosen.excluded["lacks a needed lead (II)"] == 10
    assert chosen.excluded["excluded by validation"] == 5
    assert len(chosen) + sum(chosen.excluded.values()) == len(demo_store.manifest)
