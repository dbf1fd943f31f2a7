"""``ecgops predictions`` on a real workspace's log: the table, ``--json``, filters, skipped parts,
``--prune`` and a bad ``--since``; where the workspace's log is."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from components.cli import app
from components.config import Settings, get_settings
from components.predictions.log import PredictionLog
from components.workspace import Workspace

from .helpers import TASK, entry

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    """A workspace (the CLI's, through ECGOPS_WORKSPACE) whose log holds entries of today and of 100 days
    ago, of two model versions, served and batch."""
    monkeypatch.setenv("ECGOPS_WORKSPACE", str(tmp_path))
    monkeypatch.delenv("ECGOPS_PREDICTION_LOG", raising=False)
    get_settings.cache_clear()
    workspace = Workspace(Settings(workspace=tmp_path))
    workspace.prediction_log().append(
        [
            entry(NOW - timedelta(days=100), seed=0, request_id="old"),
            entry(NOW - timedelta(hours=2), seed=1, request_id="batch-1", source="batch", n_windows=6),
            entry(
                NOW - timedelta(hours=1),
                seed=2,
                request_id="new",
                model_ref=f"{TASK}@4",
                decisions=[False, True, True, False, False],
            ),
        ]
    )
    yield workspace
    get_settings.cache_clear()


def test_the_table_shows_the_newest_entries_and_the_totals(workspace: Workspace) -> None:
    result = CliRunner().invoke(app, ["predictions", "--limit", "2"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert f"{TASK}@4" in result.output and "MI, STTC" in result.output
    assert not any(f"{NOW - timedelta(days=100):%Y-%m-%d %H:%M:%S}" in line for line in lines)  # not shown
    assert "3 entries (batch 1, served 2)" in result.output and "the newest 2 shown" in result.output


def test_json_holds_the_entries_asked_for_and_the_skipped_parts(workspace: Workspace) -> None:
    log_root = workspace.state_dir / "predictions"
    today = next(log_root.glob(f"date={(NOW - timedelta(hours=1)):%Y-%m-%d}"))
    (today / "part-truncated.parquet").write_bytes(b"PAR1\x00\x01")
    result = CliRunner().invoke(app, ["predictions", "--json", "--since", "7d", "--model", TASK])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["log"] == str(log_root) and document["total"] == 2
    assert [e["request_id"] for e in document["entries"]] == ["batch-1", "new"]
    first = document["entries"][0]
    assert set(first["quality"]) == {"snr_db", "baseline_wander"} and len(first["probabilities"]) == 5
    assert first["n_windows"] == 6 and first["time"].endswith("+00:00")
    assert [s["path"] for s in document["skipped"]] == [str(today / "part-truncated.parquet")]

    narrowed = CliRunner().invoke(
        app, ["predictions", "--json", "--model", f"{TASK}@3", "--source", "served"]
    )
    assert [e["request_id"] for e in json.loads(narrowed.output)["entries"]] == ["old"]
    table = CliRunner().invoke(app, ["predictions"])
    assert "skipped" in table.output and "part-truncated.parquet" in table.output


def test_a_bad_since_is_one_error_naming_it(workspace: Workspace) -> None:
    result = CliRunner().invoke(app, ["predictions", "--since", "last tuesday"])
    assert result.exit_code == 2
    assert "Invalid value for '--since'" in result.output and "'last tuesday' is neither" in result.output


def test_prune_applies_the_retention_of_params_yaml(workspace: Workspace) -> None:
    (workspace.root / "params.yaml").write_text("prediction_log:\n  retention_days: 30\n")
    result = CliRunner().invoke(app, ["predictions", "--prune", "--json"])
    assert result.exit_code == 0, result.output
    removed = json.loads(result.output)["removed"]
    assert [Path(p).name for p in removed] == [f"date={NOW - timedelta(days=100):%Y-%m-%d}"]
    assert sorted(workspace.prediction_log().read().frame["request_id"]) == ["batch-1", "new"]


def test_the_environment_then_params_yaml_name_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ECGOPS_PREDICTION_LOG", raising=False)
    assert Workspace(Settings(workspace=tmp_path)).prediction_log().url == str(
        tmp_path / ".ecgops" / "predictions"
    )
    (tmp_path / "params.yaml").write_text("prediction_log:\n  url: logs/predictions\n")
    assert Workspace(Settings(workspace=tmp_path)).prediction_log().url == str(
        tmp_path / "logs" / "predictions"
    )
    monkeypatch.setenv("ECGOPS_PREDICTION_LOG", "memory://deployed/predictions")
    assert isinstance(Workspace(Settings(workspace=tmp_path)).prediction_log(), PredictionLog)
    assert Workspace(Settings(workspace=tmp_path)).prediction_log().url == "memory://deployed/predictions"
