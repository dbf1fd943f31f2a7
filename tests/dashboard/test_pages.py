"""Every page under Streamlit AppTest: on an empty workspace, an empty registry, a populated workspace."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from components.dashboard.first_steps import FIRST_STEPS
from components.dashboard.monitoring import ALARM_COLUMNS, EMBEDDING_SERIES, RUN_COLUMNS
from components.registry import open_registry
from components.validation import list_quarantined, load_policy
from components.workspace import Workspace
from tests.dashboard.conftest import FIRST_VERSION_RECORDS, PAGES, Populated, new_workspace, open_page
from tests.dashboard.populate import GATE_POLICY, TASK
from tests.dashboard.traffic import NEW_SITE, Traffic


def _frames(at: Any) -> list[Any]:
    return [df.value for df in at.dataframe]


def _frame_with(at: Any, column: str) -> Any:
    found = [f for f in _frames(at) if column in f.columns]
    assert found, f"no table with a {column!r} column"
    return found[0]


def _texts(at: Any) -> str:
    parts = [
        e.value
        for kind in ("markdown", "caption", "code", "info", "warning", "error", "success")
        for e in getattr(at, kind)
    ]
    return "\n".join(str(p) for p in parts)


@pytest.mark.parametrize("page", PAGES)
def test_a_fresh_workspace_says_what_to_run_first_and_creates_nothing(
    page: str, tmp_path: Path, use_workspace: Any
) -> None:
    settings = new_workspace(tmp_path / "fresh")
    use_workspace(settings)
    at = open_page(page)
    assert [i.value for i in at.info] == [FIRST_STEPS["workspace"]]
    assert not settings.state_dir.exists(), "the dashboard only reads: no registry is created"


@pytest.mark.parametrize(
    ("page", "message"),
    [(PAGES[0], "quality"), (PAGES[1], "datasets"), (PAGES[2], "models"), (PAGES[3], "deployments")],
)
def test_an_empty_registry_gets_each_pages_first_steps(
    page: str, message: str, tmp_path: Path, use_workspace: Any
) -> None:
    settings = new_workspace(tmp_path / "empty")
    open_registry(settings.resolved_registry_url).close()
    use_workspace(settings)
    at = open_page(page)
    assert FIRST_STEPS[message] in [i.value for i in at.info]


def test_data_quality_shows_runs_per_version_expectations_trend_and_quarantine(
    populated: Populated, use_workspace: Any
) -> None:
    use_workspace(populated.settings)
    at = open_page(PAGES[0])
    runs = _frame_with(at, "verdict")
    with open_registry(populated.settings.resolved_registry_url) as reg:
        recorded = reg.validation_runs(dataset="demo")
    assert runs["run"].tolist() == [r.id for r in recorded] and len(recorded) == 2
    assert runs["verdict"].tolist() == [r.verdict for r in recorded]
    assert runs["records"].tolist() == [393, FIRST_VERSION_RECORDS]

    outcomes = _frame_with(at, "passed")
    policy_ids = {
        spec.id for suite in ("manifest", "records", "dataset") for spec in load_policy().suite(suite)
    }
    assert set(outcomes["expectation"]) == policy_ids
    latest = json.loads(
        (Path(recorded[0].report_uri.removeprefix("file://")).parent / "result.json").read_text()
    )
    failed_now = {e["id"] for e in latest["expectations"] if not e["success"]}
    assert set(outcomes.loc[~outcomes["passed"], "expectation"]) == failed_now

    trend = next(f for f in _frames(at) if any(str(c).startswith("run ") for c in f.columns))
    assert [c for c in trend.columns if c.startswith("run ")] == [f"run {r.id}" for r in reversed(recorded)]
    charts = at.get("vega_lite_chart")
    assert charts, "the trend of unexpected-record percentages is plotted"

    listing = list_quarantined(Workspace(populated.settings), "demo")
    counts = {m.label: m.value for m in at.metric}
    assert counts["quarantined"] == f"{int((listing['status'] == 'quarantined').sum()):,}"
    table = _frame_with(at, "reasons_text")
    awaiting = listing[listing["status"] == "quarantined"]  # the page opens on "awaiting review"
    assert set(table["record_id"]) <= set(awaiting["record_id"]) and len(table) == min(25, len(awaiting))
    reasons = _frame_with(at, "why")
    assert set(reasons["expectation"]) <= set(listing.loc[0, "reason_ids"].split(","))
    images = at.get("image")
    assert images and images[0].captions[0].startswith("12-lead ECG")

    version = at.selectbox(key="quality-version")
    version.set_value(version.options[-1]).run()  # the first version: one validation run
    assert _frame_with(at, "verdict")["records"].tolist() == [FIRST_VERSION_RECORDS]


def test_a_steward_decision_in_the_page_reaches_the_registry_like_review(
    populated: Populated, use_workspace: Any
) -> None:
    use_workspace(populated.settings)
    at = open_page(PAGES[0])
    record_id = at.selectbox(key="quarantine-record").value
    at.radio(key="steward-decision-choice").set_value("accept")
    at.text_area(key="steward-note").input("")
    at.button[0].click().run()
    assert any("a note saying why is required" in e.value for e in at.error)
    with open_registry(populated.settings.resolved_registry_url) as reg:
        assert record_id not in reg.steward_decisions("demo")

    at.radio(key="steward-decision-choice").set_value("accept")
    at.text_area(key="steward-note").input("limb leads re-checked on the paper ECG")
    at.button[0].click().run()
    assert not at.exception and not at.error
    with open_registry(populated.settings.resolved_registry_url) as reg:
        decision = reg.steward_decisions("demo")[record_id]
    assert (decision.decision, decision.note, decision.reviewer) == (
        "accept",
        "limb leads re-checked on the paper ECG",
        "steward-test",
    )
    listing = list_quarantined(Workspace(populated.settings), "demo")
    assert listing.set_index("record_id").at[record_id, "status"] == "accepted"
    assert any(record_id in s.value for s in at.success)
    at.radio(key="quarantine-status").set_value("accepted").run()
    assert record_id in _frame_with(at, "reasons_text")["record_id"].tolist()


def test_datasets_shows_versions_and_the_label_shift_from_the_manifests(
    populated: Populated, use_workspace: Any
) -> None:
    use_workspace(populated.settings)
    at = open_page(PAGES[1])
    versions = _frame_with(at, "sources")
    assert versions["records"].tolist() == [393, FIRST_VERSION_RECORDS]
    assert versions["parent"].tolist()[0] == populated.first_md5.removesuffix(".dir")[:12]
    assert versions["sources"].tolist()[0] == "ptbxl 393"

    manifest = pq.read_table(populated.settings.data_dir / "demo" / "manifest.parquet").to_pandas()
    expected = Counter(code for labels in manifest["labels"] for code in json.loads(labels))
    first = manifest.sort_values("ingested_at").head(FIRST_VERSION_RECORDS)
    expected_before = Counter(code for labels in first["labels"] for code in json.loads(labels))
    shift = _frame_with(at, "change (pp)")
    got = shift.set_index("label")
    assert {k: int(v) for k, v in got["records"].items() if v} == dict(expected)
    assert {k: int(v) for k, v in got["previous records"].items() if v} == dict(expected_before)
    norm = got.loc["NORM"]
    assert norm["change (pp)"] == pytest.approx(
        100 * expected["NORM"] / 393 - 100 * expected_before["NORM"] / FIRST_VERSION_RECORDS
    )
    assert "label mix shift (total variation)" in [m.label for m in at.metric]

    at.selectbox(key="datasets-version").set_value(populated.first_md5).run()
    first_shift = _frame_with(at, "share %")  # the first version has no parent: nothing to compare
    assert "change (pp)" not in first_shift.columns
    assert {k: int(v) for k, v in first_shift.set_index("label")["records"].items()} == dict(expected_before)


def test_models_shows_the_registry_metrics_gates_documents_and_lineage(
    populated: Populated, use_workspace: Any
) -> None:
    use_workspace(populated.settings)
    at = open_page(PAGES[2])
    table = _frame_with(at, "gate")
    assert table["model"].tolist() == [m.ref for m in reversed(populated.models)]
    at.selectbox(key="models-stage").set_value("production").run()
    production = _frame_with(at, "gate")
    assert production["stage"].tolist() == ["production"]

    at.selectbox(key="models-stage").set_value("(all)").run()
    first = populated.models[0]
    at.selectbox(key="models-model").set_value(first.ref).run()
    history = _frame_with(at, "ci low")
    assert history["version"].tolist() == [1, 2, 3]
    with open_registry(populated.settings.resolved_registry_url) as reg:
        macro = [next(x for x in reg.metrics(m.id) if x.name == "macro_auroc") for m in populated.models]
        gates = reg.gate_decisions(first.id)
    assert history["value"].tolist() == pytest.approx([x.value for x in macro])
    assert history["ci low"].tolist() == pytest.approx([x.ci_low for x in macro])
    assert at.get("vega_lite_chart"), "metrics with CIs are plotted"

    verdicts = _frame_with(at, "verdict")
    assert verdicts["policy"].tolist() == [GATE_POLICY]
    assert verdicts["verdict"].tolist() == [gates[0].verdict]
    assert verdicts["reasons"].tolist() == ["\n".join(gates[0].reasons) or "(none)"]
    assert any(b.label == "download model_card.md" for b in at.get("download_button"))

    (graph,) = at.get("graphviz_chart")
    dot = graph.proto.spec
    assert f'"model:{first.id}"' in dot and "dataset_version:" in dot and "gate:" in dot
    assert "validation_run:" in dot and "run #" in dot


def test_deployments_shows_bentos_per_task_and_stage_with_pull_commands_and_the_audit_log(
    populated: Populated, use_workspace: Any
) -> None:
    use_workspace(populated.settings)
    at = open_page(PAGES[3])
    slots = _frame_with(at, "pull")
    with open_registry(populated.settings.resolved_registry_url) as reg:
        production = reg.bento_for(TASK, "production")
        staging = reg.bento_for(TASK, "staging")
        n_audit = reg.count_audit()
    assert slots["stage"].tolist() == ["production", "staging"]
    assert slots["sha256"].tolist() == [production.sha256, staging.sha256]
    assert slots["artifact URI"].tolist() == [production.artifact_uri, staging.artifact_uri]
    codes = [c.value for c in at.code]
    assert f"ecgops bento pull {TASK}@production" in codes and f"ecgops bento pull {TASK}@staging" in codes

    audit = _frame_with(at, "actor")
    assert len(audit) == n_audit and audit["at"].is_monotonic_decreasing
    at.selectbox(key="audit-action").set_value("stage.changed").run()
    changes = _frame_with(at, "actor")
    assert set(changes["action"]) == {"stage.changed"} and len(changes) == 5  # 3 new, 2 promotions


def _frame_of(at: Any, columns: tuple[str, ...]) -> Any:
    found = [f for f in _frames(at) if tuple(f.columns) == columns]
    assert found, f"no table with the columns {columns}"
    return found[0]


def _drawn_series(at: Any) -> set[str]:
    """The series the first chart of the page draws (its data travels as Arrow beside the spec)."""
    chart = at.get("vega_lite_chart")[0].proto
    frames = [pa.ipc.open_stream(ds.data.data).read_pandas() for ds in chart.datasets]
    return {value for frame in frames if "series" in frame for value in frame["series"]}


def test_monitoring_shows_alarms_drift_per_site_shadow_reports_and_the_log(
    populated: Populated, traffic: Traffic, use_workspace: Any
) -> None:
    use_workspace(populated.settings)
    at = open_page(PAGES[4])
    breach, ok = traffic.breach_run, traffic.ok_run
    assert any(e.value.startswith("1 breach(es)") for e in at.error)
    alarms = _frame_of(at, ALARM_COLUMNS)
    assert alarms["run"].tolist() == [breach.id]
    assert alarms["reasons"].tolist() == ["\n".join(breach.reasons)]
    runs = _frame_of(at, RUN_COLUMNS)
    assert runs["run"].tolist() == [breach.id, ok.id] and runs["status"].tolist() == ["breach", "ok"]
    assert runs["report"].tolist() == [breach.report_uri, ok.report_uri]

    drawn = _drawn_series(at)  # per site by default; devices on demand
    assert {"all", f"site={NEW_SITE}", EMBEDDING_SERIES} <= drawn
    assert not any(series.startswith("device=") for series in drawn)
    at.multiselect(key="monitoring-groups").set_value([f"site={NEW_SITE}"]).run()
    assert _drawn_series(at) == {f"site={NEW_SITE}"}

    tests = _frame_with(at, "KS D")  # the newest run's feature tests, one row each
    assert len(tests) == len(breach.summary["features"]) and tests["breach"].sum() == sum(
        t["breach"] for t in breach.summary["features"]
    )
    assert any(e.label.startswith("read the report") for e in at.expander)
    at.selectbox(key="monitoring-run").set_value(ok.id).run()
    assert any(s.value.startswith("OK:") for s in at.success)

    report = traffic.shadow
    shadow = _frame_with(at, "lowest kappa")
    assert shadow[["candidate", "production", "passed"]].values.tolist() == [
        [report.candidate, report.production, report.passed]
    ]
    labels = _frame_with(at, "flips to positive")
    assert labels["label"].tolist() == list(report.agreement)
    assert labels["kappa"].tolist() == pytest.approx([a["kappa"] for a in report.agreement.values()])

    counts = {m.label: m.value for m in at.metric}
    assert counts["predictions logged"] == f"{traffic.n_logged:,}"
    (warning,) = at.warning
    assert "1 part(s) of the log could not be read" in warning.value
    assert str(traffic.corrupt_part) in warning.value


def test_monitoring_on_an_empty_registry_says_what_produces_each_section(
    tmp_path: Path, use_workspace: Any
) -> None:
    settings = new_workspace(tmp_path / "empty")
    open_registry(settings.resolved_registry_url).close()
    use_workspace(settings)
    at = open_page(PAGES[4])
    infos = [i.value for i in at.info]
    assert infos == [FIRST_STEPS["monitoring"], FIRST_STEPS["shadow"], FIRST_STEPS["predictions"]]
    assert not at.warning and not at.error


def test_long_listings_are_paginated(tmp_path: Path, use_workspace: Any) -> None:
    settings = new_workspace(tmp_path / "many")
    artifact = tmp_path / "weights.bin"
    artifact.write_bytes(bytes(range(256)) * 64)
    with open_registry(settings.resolved_registry_url) as reg, reg.atomic():
        for _ in range(60):
            reg.register_model("fm", kind="foundation", artifact_uri=str(artifact))
    use_workspace(settings)
    at = open_page(PAGES[2])
    assert _frame_with(at, "gate")["model"].tolist() == [f"fm@{v}" for v in range(60, 35, -1)]
    assert "rows 1–25 of 60" in _texts(at)
    at.pagination(key="models-page").select(3).run()
    assert _frame_with(at, "gate")["model"].tolist() == [f"fm@{v}" for v in range(10, 0, -1)]
    assert "rows 51–60 of 60" in _texts(at)
    at.selectbox(key="models-size").set_value(100).run()
    assert len(_frame_with(at, "gate")) == 60 and not at.pagination


def test_a_registry_that_cannot_be_opened_is_reported_on_the_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = new_workspace(tmp_path / "broken")
    broken = tmp_path / "not-a-database.db"
    broken.write_bytes(b"this is not SQLite" * 100)
    monkeypatch.setenv("ECGOPS_WORKSPACE", str(settings.workspace))
    monkeypatch.setenv("ECGOPS_REGISTRY_URL", f"sqlite:///{broken}")
    at = open_page(PAGES[2])
    assert next(e.value for e in at.error).startswith(f"cannot open the registry at sqlite:///{broken}")


def test_a_plot_missing_from_validations_cache_is_drawn_by_the_page_run_after_run(
    populated: Populated, use_workspace: Any
) -> None:
    use_workspace(populated.settings)
    at = open_page(PAGES[0])
    record_id = at.selectbox(key="quarantine-record").value
    plot = populated.settings.state_dir / "validation" / "demo" / "plots" / f"{record_id}.png"
    original = plot.read_bytes()
    for _ in range(2):  # Streamlit closes pyplot figures after every run; the page's plotter survives that
        plot.unlink()
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        assert at.get("image") and plot.read_bytes() == original
