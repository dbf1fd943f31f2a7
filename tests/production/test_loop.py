"""The production loop on real records: batch inference, the prediction log, drift monitoring, shadow.

One workspace for the module: samples/ ingested and versioned, a TINY foundation, a linear-probe
superdiagnostic model (gated, in production) and a second one as the candidate.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import wfdb
from typer.testing import CliRunner

from components.cli import app
from components.config import Settings
from components.finetune.stage import FinetuneRequest, finetune
from components.inference.batch import BatchRequest, predict_drop
from components.inference.errors import InferenceError
from components.io.wfdb_reader import read_record
from components.monitoring.errors import MonitoringError
from components.monitoring.shadow import ShadowRequest, shadow
from components.monitoring.stage import MonitorRequest, monitor, newest_drop
from components.predictions.params import PredictionLogParams
from components.quality.defects import baseline_wander
from components.registry import open_registry
from components.runs.lifecycle import RunOptions
from components.workspace import Workspace
from tests.conftest import REPO_ROOT
from tests.serving.conftest import pretrained_workspace
from tests.training.conftest import TINY

pytestmark = pytest.mark.slow
TASK = "ptbxl-superdiagnostic"
CINC = REPO_ROOT / "tests" / "fixtures" / "cinc"
LONG_RECORDS = {"A0001": CINC / "cpsc2018", "Q0026": CINC / "cpsc2018_extra"}  # 15 s and 21 s at 500 Hz


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, samples_dir: Path) -> Settings:
    params = {"ingest": {"workers": 1}, "pretrain": TINY, "predict": {"workers": 0}}
    return pretrained_workspace(tmp_path_factory.mktemp("production-ws"), samples_dir, params, "prod-salt")


def _tuned(settings: Settings, seed: int) -> str:
    foundation = Workspace(settings)
    with foundation.registry() as registry:
        parent = registry.models(kind="foundation", limit=1)[0].ref
    request = FinetuneRequest(TASK, from_model=parent, mode="linear_probe")
    ws = Workspace(settings).with_params(
        finetune=foundation.params.finetune.model_copy(update={"seed": seed})
    )
    result = finetune(ws, request, RunOptions(max_epochs=1))
    assert result.model_ref is not None
    with ws.registry() as registry:
        registry.record_gate_decision(
            result.model_ref, policy="ptbxl-superdiagnostic-demo", verdict="pass", reasons=["floors met"]
        )
    return result.model_ref


@pytest.fixture(scope="module")
def production(settings: Settings) -> str:
    ref = _tuned(settings, seed=0)
    with open_registry(settings.resolved_registry_url) as registry:
        registry.promote(ref, "production")
    return ref


@pytest.fixture(scope="module")
def candidate(settings: Settings, production: str) -> str:
    return _tuned(settings, seed=1)


def _workspace(settings: Settings, log: Path) -> Workspace:
    return Workspace(settings).with_params(prediction_log=PredictionLogParams(url=str(log)))


def _subset_drop(samples: Path, dest: Path, folds: set[int]) -> Path:
    """A PTB-XL drop of the samples' records in ``folds``."""
    dest.mkdir()
    table = pd.read_csv(samples / "ptbxl_database.csv")
    table[table["strat_fold"].isin(folds)].to_csv(dest / "ptbxl_database.csv", index=False)
    shutil.copy(samples / "scp_statements.csv", dest)
    shutil.copytree(samples / "records100", dest / "records100")
    return dest


def _drifted_drop(samples: Path, dest: Path, site: str) -> Path:
    """Training-fold records with baseline wander planted in every other one, from another site."""
    dest.mkdir()
    table = pd.read_csv(samples / "ptbxl_database.csv")
    rows, rng = [], np.random.default_rng(0)
    for i, path in enumerate(table[table["strat_fold"] <= 8]["filename_lr"].head(160)):
        record = read_record(samples / path)
        signal = record.signal.T.astype(np.float32)
        if i % 2 == 0:
            signal, _ = baseline_wander(signal, {"lead_mask": [True] * 12}, record.fs, rng)
        name = f"r{i:03d}"
        wfdb.wrsamp(
            name,
            fs=record.fs,
            units=["mV"] * 12,
            sig_name=list(record.sig_names),
            p_signal=signal.T.astype(np.float64),
            fmt=["16"] * 12,
            write_dir=str(dest),
        )
        rows.append({"record": name, "patient_id": f"p{i}", "site": site, "device": "cart-X"})
    pd.DataFrame(rows).to_csv(dest / "manifest.csv", index=False)
    return dest


# ---------------------------------------------------------------- batch inference


def test_a_drop_is_scored_with_lineage_and_logged_without_signal_or_patient(
    settings: Settings, production: str, samples_dir: Path, tmp_path: Path
) -> None:
    ws = _workspace(settings, tmp_path / "log")
    result = predict_drop(
        ws, BatchRequest(drop=samples_dir, model=f"{TASK}@production", out=str(tmp_path / "out"))
    )
    store = ws.store()
    assert result.model_ref == production and result.n_quarantined == 0
    assert result.n_predicted == len(store.manifest) and result.n_logged == result.n_predicted
    table = pq.read_table(tmp_path / "out" / "predictions.parquet").to_pandas()
    assert set(table["model_ref"]) == {production}
    assert set(table["input_hash"]) == set(store.manifest["content_hash"])  # the hash ingest gave each record
    labels = [c.removeprefix("proba.") for c in table.columns if c.startswith("proba.")]
    assert labels and all(table[f"proba.{lab}"].between(0, 1).all() for lab in labels)
    assert (table["n_windows"] == 1).all()
    window = ws.prediction_log().read(model=production)
    assert len(window.frame) == result.n_predicted and not window.skipped
    assert set(window.frame["source"]) == {"batch"}
    stored = b"".join(p.read_bytes() for p in (tmp_path / "log").rglob("*.parquet"))
    patient = str(pd.read_csv(samples_dir / "ptbxl_database.csv")["patient_id"].iloc[0])
    assert patient.encode() not in stored and b"patient" not in stored


def test_long_records_are_windows_and_broken_ones_go_to_quarantine(
    settings: Settings, production: str, tmp_path: Path
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    for name, folder in LONG_RECORDS.items():
        for suffix in (".hea", ".mat"):
            shutil.copy(folder / f"{name}{suffix}", drop)
    (drop / "broken.hea").write_text((CINC / "cpsc2018" / "A0001.hea").read_text().replace("A0001", "broken"))
    (drop / "broken.mat").write_bytes(b"\x00" * 10)
    ws = _workspace(settings, tmp_path / "log")
    result = predict_drop(ws, BatchRequest(drop=drop, model=production, out=str(tmp_path / "out")))
    table = pq.read_table(tmp_path / "out" / "predictions.parquet").to_pandas().set_index("record")
    assert (
        result.n_predicted == 2
        and table.loc["A0001", "n_windows"] == 2
        and table.loc["Q0026", "n_windows"] == 3
    )
    quarantine = pq.read_table(tmp_path / "out" / "quarantine.parquet").to_pandas()
    assert list(quarantine["record"]) == ["broken"] and quarantine["reason"].iloc[0]


def test_an_unknown_stage_or_model_is_a_clear_error(
    settings: Settings, production: str, samples_dir: Path
) -> None:
    ws = Workspace(settings)
    with pytest.raises(InferenceError, match="no model in staging"):
        predict_drop(ws, BatchRequest(drop=samples_dir, model=f"{TASK}@staging"))
    result = CliRunner().invoke(app, ["predict", str(samples_dir), "--model", f"{TASK}@nope"])
    assert result.exit_code != 0


# ---------------------------------------------------------------- monitoring


@pytest.fixture(scope="module")
def drift_windows(
    settings: Settings, production: str, samples_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("drift")
    clean = _subset_drop(samples_dir, root / "clean", set(range(1, 9)))
    drifted = _drifted_drop(samples_dir, root / "drifted", site="site-B")
    logs = {}
    for name, drop in (("clean", clean), ("drifted", drifted)):
        logs[name] = root / f"log-{name}"
        predict_drop(
            _workspace(settings, logs[name]),
            BatchRequest(drop=drop, model=production, out=str(root / name / "out")),
        )
    return logs


def test_a_clean_window_does_not_alarm_and_a_drifted_one_breaches(
    settings: Settings, drift_windows: dict[str, Path]
) -> None:
    clean = monitor(_workspace(settings, drift_windows["clean"]), MonitorRequest(task=TASK))
    drifted = monitor(_workspace(settings, drift_windows["drifted"]), MonitorRequest(task=TASK))
    assert clean.status == "ok", clean.reasons
    assert drifted.status == "breach"
    summary = json.loads((Path(drifted.report).parent / "assessment.json").read_text())
    breached = {(f["feature"], f["group"]) for f in summary["features"] if f["breach"]}
    assert ("baseline_ratio_max", "all") in breached
    assert any(group == "site=site-B" for _, group in breached)
    assert Path(drifted.report).read_text().count("<img") >= 3 and Path(drifted.gauges).is_file()
    clean_p = json.loads((Path(clean.report).parent / "assessment.json").read_text())["embedding"]["p_value"]
    drift_p = summary["embedding"]["p_value"]
    clean_features = json.loads((Path(clean.report).parent / "assessment.json").read_text())["features"]
    smallest = {
        name: min((f["p_adjusted"] for f in tests if f["p_adjusted"] is not None), default=None)
        for name, tests in (("clean", clean_features), ("drifted", summary["features"]))
    }
    print(f"embedding MMD p: clean {clean_p}, drifted {drift_p}; smallest adjusted KS p: {smallest}")
    assert clean_p is not None and drift_p is not None and drift_p < clean_p
    with open_registry(settings.resolved_registry_url) as registry:
        runs = {r.id: r.status for r in registry.monitor_runs(task=TASK)}
        breaches = registry.audit(action="monitor.breach")
    assert runs[clean.monitor_run_id] == "ok" and runs[drifted.monitor_run_id] == "breach"
    assert any(str(drifted.model_ref) in b.entity_id for b in breaches)


def test_too_few_logged_predictions_decide_nothing(
    settings: Settings, production: str, tmp_path: Path
) -> None:
    outcome = monitor(_workspace(settings, tmp_path / "empty-log"), MonitorRequest(task=TASK))
    assert outcome.status == "insufficient" and outcome.n_window == 0
    assert any("0" in reason for reason in outcome.reasons)


def test_retraining_after_a_breach_reads_the_newest_drop(tmp_path: Path) -> None:
    for name in ("2026-11-30", "2026-12-07", "2026-12-14"):
        (tmp_path / name).mkdir()
    for name in ("2026-11-30", "2026-12-07"):
        (tmp_path / name / "ptbxl_database.csv").write_text("ecg_id\n")
    assert newest_drop(tmp_path) == tmp_path / "2026-12-07"  # the last by name that holds anything
    with pytest.raises(MonitoringError, match="no drop folder"):
        newest_drop(tmp_path / "2026-12-14")


# ---------------------------------------------------------------- shadow


def test_shadow_on_a_drop_reports_agreement_and_auroc_deltas(
    settings: Settings, production: str, candidate: str, samples_dir: Path
) -> None:
    outcome = shadow(Workspace(settings), ShadowRequest(task=TASK, candidate=candidate, drop=samples_dir))
    assert outcome.production == production and outcome.candidate == candidate
    assert outcome.n_records == len(Workspace(settings).store().manifest)
    for row in outcome.agreement:
        assert 0 <= row["agreement"] <= 1 and -1 <= row["kappa"] <= 1
    assert outcome.metrics_delta is not None and outcome.metrics_delta["n_records"] > 0
    with open_registry(settings.resolved_registry_url) as registry:
        latest = registry.latest_shadow_report(candidate, production)
    assert latest is not None and latest.id == outcome.shadow_report_id


def test_shadow_replays_the_logged_window_from_the_store(
    settings: Settings, production: str, candidate: str, samples_dir: Path, tmp_path: Path
) -> None:
    ws = _workspace(settings, tmp_path / "log")
    predict_drop(ws, BatchRequest(drop=_subset_drop(samples_dir, tmp_path / "d", {9, 10}), model=production))
    outcome = shadow(ws, ShadowRequest(task=TASK, candidate=candidate))
    logged = ws.prediction_log().read(model=production).frame
    assert outcome.source.startswith("log:") and outcome.n_missing == 0
    assert outcome.n_records == len(logged)
