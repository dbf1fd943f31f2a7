"""Steward review: decisions are recorded with who/when/why, applied on the next validate, and survive
re-ingest (a record planted into the WFDB drop itself is quarantined, accepted, and stays accepted)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from components.config import IngestParams, Settings, get_settings
from components.io.ingest import ingest
from components.registry import open_registry
from components.validation import (
    ReviewError,
    ValidateOptions,
    decide,
    excluded_records,
    list_quarantined,
    validate,
)
from components.workspace import Workspace
from tests.conftest import QUIET, ingest_workspace, zero_lead_in_drop


@pytest.fixture
def defective_drop(small_drop: Path, tmp_path: Path) -> tuple[Path, str, str]:
    """The small drop with V2 zeroed in its 4th record and V5 zeroed in its 6th."""
    drop = tmp_path / "drop"
    shutil.copytree(small_drop, drop)
    rels = pd.read_csv(drop / "ptbxl_database.csv")["filename_lr"]
    zero_lead_in_drop(drop, str(rels.iloc[3]), "V2")
    zero_lead_in_drop(drop, str(rels.iloc[5]), "V5")
    return drop, str(rels.iloc[3]), str(rels.iloc[5])


def test_decisions_persist_across_reingest_and_revalidation(
    workspace: Settings, defective_drop: tuple[Path, str, str], ingest_params: IngestParams
) -> None:
    drop, rel, other_rel = defective_drop
    ws = Workspace(workspace)
    ingest(ingest_workspace(workspace, ingest_params), drop, dataset="demo", options=QUIET)
    first = validate(ws, "demo")
    listed = list_quarantined(ws, "demo")
    zeroed = listed.loc[listed["source_record"] == rel]
    assert len(zeroed) == 1 and "no_flat_line (V2)" in zeroed["reasons_text"].iloc[0]
    assert Path(zeroed["plot"].iloc[0]).is_file()
    target = str(zeroed["record_id"].iloc[0])
    other = str(listed.loc[listed["source_record"] == other_rel, "record_id"].iloc[0])

    decide(ws, [target], "accept", "V2 unused by the downstream task", dataset="demo", reviewer="dr.steward")
    decide(ws, [other], "reject", "confirmed artefact", dataset="demo", reviewer="dr.steward")
    pending = list_quarantined(ws, "demo", status="accepted")
    assert pending["record_id"].tolist() == [target] and pending["reviewer"].iloc[0] == "dr.steward"

    shutil.rmtree(workspace.data_dir / "demo")
    ingest(ingest_workspace(workspace, ingest_params), drop, dataset="demo", options=QUIET)
    second = validate(ws, "demo")
    quarantine = pd.read_parquet(second.quarantine_path).set_index("record_id")
    assert quarantine.at[target, "status"] == "accepted"
    assert quarantine.at[target, "decision_note"] == "V2 unused by the downstream task"
    assert quarantine.at[target, "reviewer"] == "dr.steward" and quarantine.at[target, "decided_at"]
    assert second.n_accepted == 1 and second.n_excluded == first.n_excluded - 1
    excluded = excluded_records(ws, "demo")
    assert other in excluded and target not in excluded
    assert quarantine.at[other, "status"] == "rejected"
    assert "V2 unused by the downstream task" in second.summary_html.read_text()
    assert (workspace.data_dir / "demo" / "manifest.parquet").is_file()
    assert (
        open_registry(workspace.resolved_registry_url).steward_decisions("demo")[target].decision == "accept"
    )


def test_review_refuses_unknown_records_and_empty_notes(
    workspace: Settings, defective_drop: tuple[Path, str, str], ingest_params: IngestParams
) -> None:
    drop, _, _ = defective_drop
    ws = Workspace(workspace)
    ingest(ingest_workspace(workspace, ingest_params), drop, dataset="demo", options=QUIET)
    with pytest.raises(ReviewError, match="not been validated"):
        list_quarantined(ws, "demo")
    validate(ws, "demo", options=ValidateOptions(plots=False))
    target = list_quarantined(ws, "demo")["record_id"].iloc[0]
    with pytest.raises(ReviewError, match="note"):
        decide(ws, [target], "accept", "  ", dataset="demo")
    with pytest.raises(ReviewError, match="not in the latest quarantine list"):
        decide(ws, ["0000000000000000"], "reject", "typo", dataset="demo")


def test_review_cli(
    workspace: Settings,
    defective_drop: tuple[Path, str, str],
    ingest_params: IngestParams,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from components.cli.validate_cmd import review_app

    drop, rel, _ = defective_drop
    ingest(ingest_workspace(workspace, ingest_params), drop, dataset="demo", options=QUIET)
    validate(Workspace(workspace), "demo", options=ValidateOptions(plots=False))
    monkeypatch.setenv("ECGOPS_WORKSPACE", str(workspace.workspace))
    monkeypatch.setenv("ECGOPS_REGISTRY_URL", workspace.resolved_registry_url)
    monkeypatch.setenv("ECGOPS_USER", "cli.steward")
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        listed = runner.invoke(review_app, ["list", "--dataset", "demo", "--json"])
        assert listed.exit_code == 0, listed.output
        rows = json.loads(listed.output)
        target = next(r["record_id"] for r in rows if r["source_record"] == rel)
        done = runner.invoke(review_app, ["reject", target, "--dataset", "demo", "--note", "lead off"])
        assert done.exit_code == 0, done.output
        assert "reject" in done.output and "cli.steward" in done.output
        missing_note = runner.invoke(review_app, ["accept", target, "--dataset", "demo"])
        assert missing_note.exit_code != 0
        rejected = json.loads(
            runner.invoke(review_app, ["list", "--dataset", "demo", "--status", "rejected", "--json"]).output
        )
        assert [r["record_id"] for r in rejected] == [target]
    finally:
        get_settings.cache_clear()
