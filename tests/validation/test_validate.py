"""The validate stage end to end on real records: quarantine with reasons, reports, blocking, trend."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from components.config import IngestParams, Settings, get_settings
from components.io.ingest import ingest
from components.io.store import DatasetStore, write_table_atomic
from components.validation import ValidateOptions, load_policy, validate
from components.validation.quarantine import excluded_ids
from components.workspace import Workspace
from tests.conftest import QUIET, ingest_workspace

EXPECTED_REASON = {
    "lead_zeroed": "no_flat_line",
    "clipping": "no_clipping",
    "mains_hum_50hz": "no_mains_interference",
    "baseline_wander": "no_strong_baseline_wander",
    "la_ra_swap": "no_limb_lead_reversal",
    "nan_gap": "no_missing_samples",
    "wrong_sampling_rate": "duration_allowed",
    "microvolts": "amplitude_in_mv",
}


def _records_docs_page(result_dir: Path, docs_index: Path, dataset: str) -> str:
    pages = sorted((docs_index.parent / "validations" / dataset / "records").rglob("*.html"))
    assert pages, "no Data Docs page for the records suite"
    return pages[-1].read_text()


def test_planted_defects_are_quarantined_with_reasons_and_reported(
    planted: tuple[Settings, pd.DataFrame],
) -> None:
    settings, truth = planted
    result = validate(Workspace(settings), "planted")

    quarantine = pd.read_parquet(result.quarantine_path).set_index("record_id")
    for row in truth[truth["transform"] != ""].itertuples():
        assert row.record_id in quarantine.index, f"{row.transform} copy {row.record_id} not quarantined"
        reasons = quarantine.at[row.record_id, "reason_ids"].split(",")
        assert EXPECTED_REASON[row.transform] in reasons, (row.transform, reasons)
    originals = truth.loc[truth["transform"] == "", "record_id"]
    assert originals.isin(quarantine.index).sum() <= 2
    assert result.exit_code == 0 and result.verdict == "warn" and not result.blocked
    assert set(excluded_ids(quarantine.reset_index())) == set(quarantine.index)

    summary = result.summary_html.read_text()
    for rid in quarantine.index:
        assert rid in summary
        assert (result.report_dir.parent / "plots" / f"{rid}.png").read_bytes()[:4] == b"\x89PNG"
    assert "no_flat_line" in summary and "in lead" in summary

    assert result.data_docs_index is not None and result.data_docs_index.is_file()
    page = _records_docs_page(result.report_dir, result.data_docs_index, "planted")
    for failing in result.failed("quarantine"):
        assert failing.id in page

    payload = json.loads(result.result_json.read_text())
    assert payload["verdict"] == "warn" and payload["n_quarantined"] == len(quarantine)
    assert {e["id"] for e in payload["expectations"]} == {
        e.id for suite in load_policy().suites.values() for e in suite
    }


def test_split_leakage_blocks_and_cli_exits_1(demo: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    root = demo.data_dir / "demo"
    manifest = DatasetStore.open(root).manifest.copy()
    other = manifest.index[manifest["split"] != manifest.at[0, "split"]][0]
    manifest.loc[other, "patient_key"] = manifest.at[0, "patient_key"]
    write_table_atomic(manifest, root / "manifest.parquet")

    result = validate(Workspace(demo), "demo")
    assert result.blocked and result.exit_code == 1 and result.verdict == "fail"
    assert "no_split_leakage" in [e.id for e in result.failed("block")]

    import typer

    from components.cli.validate_cmd import validate_command

    app = typer.Typer()
    app.command()(validate_command)
    monkeypatch.setenv("ECGOPS_WORKSPACE", str(demo.workspace))
    monkeypatch.setenv("ECGOPS_REGISTRY_URL", demo.resolved_registry_url)
    get_settings.cache_clear()
    try:
        out = CliRunner().invoke(app, ["--dataset", "demo", "--json", "--no-plots"])
    finally:
        get_settings.cache_clear()
    assert out.exit_code == 1, out.output
    assert json.loads(out.output)["failed"]["block"] == ["no_split_leakage"]


def test_manifest_schema_mismatch_blocks(demo: Settings) -> None:
    root = demo.data_dir / "demo"
    manifest = DatasetStore.open(root).manifest.drop(columns=["annotations"])
    write_table_atomic(manifest, root / "manifest.parquet")
    result = validate(Workspace(demo), "demo", options=ValidateOptions(plots=False))
    assert [e.id for e in result.failed("block")] == ["manifest_schema"]
    assert result.exit_code == 1


def test_thresholds_come_from_the_policy(planted: tuple[Settings, pd.DataFrame], tmp_path: Path) -> None:
    settings, truth = planted
    schemas = tmp_path / "schemas"
    shutil.copytree(Path(load_policy().path or "").parents[1], schemas)
    policy_file = schemas / "validation" / "policy.yaml"
    raw = yaml.safe_load(policy_file.read_text())
    for spec in raw["suites"]["records"]:
        if spec["id"] == "no_flat_line":
            spec["kwargs"]["max_value"] = 20.0
    raw["version"] = "test-relaxed"
    policy_file.write_text(yaml.safe_dump(raw, allow_unicode=True))

    result = validate(
        Workspace(settings), "planted", options=ValidateOptions(policy_path=policy_file, plots=False)
    )
    assert result.policy_version == "test-relaxed"
    flat = next(e for e in result.expectations if e.id == "no_flat_line")
    assert flat.success and flat.kwargs["max_value"] == 20.0
    zeroed = truth.loc[truth["transform"] == "lead_zeroed", "record_id"]
    quarantine = pd.read_parquet(result.quarantine_path).set_index("record_id")
    for rid in zeroed:
        assert "no_flat_line" not in str(quarantine["reason_ids"].get(rid, ""))


def test_trend_against_previous_dataset_version(
    demo: Settings, samples_dir: Path, ingest_params: IngestParams
) -> None:
    first = validate(Workspace(demo), "demo", options=ValidateOptions(plots=False))
    assert first.previous_run is None and first.trend == []
    ingest(ingest_workspace(demo, ingest_params), samples_dir, dataset="demo", options=QUIET)
    second = validate(Workspace(demo), "demo", options=ValidateOptions(plots=False))
    assert second.content_fingerprint != first.content_fingerprint
    assert second.previous_run == first.run_name
    assert {t["id"] for t in second.trend} >= {"no_flat_line", "no_limb_lead_reversal"}
    assert "previous dataset version" in second.summary_html.read_text()


def test_empty_dataset_blocks(workspace: Settings) -> None:
    from components.io.store import StoreInfo, create_store

    create_store(workspace.data_dir / "empty", StoreInfo(fs=100, n_samples=1000))
    result = validate(Workspace(workspace), "empty")
    assert result.n_records == 0 and result.exit_code == 1
    assert "has_records" in [e.id for e in result.failed("block")]
