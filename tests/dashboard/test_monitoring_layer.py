"""The Monitoring page's data layer on real registry rows and a real prediction log with a corrupt part."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from components.config import Settings
from components.dashboard import monitoring as mon
from components.dashboard.charts import P_FLOOR, drift_chart, volume_chart
from components.io.store import DatasetStore
from components.monitoring.drift import DriftInputs, assess
from components.monitoring.policy import load_policy
from components.registry import MonitorRunInfo, MonitorRunRecord, open_registry
from components.training.reports import SUPERCLASSES
from components.workspace import Workspace
from tests.dashboard.traffic import NEW_SITE, TASK, Traffic, add_traffic


@dataclass(frozen=True)
class Monitored:
    settings: Settings
    traffic: Traffic
    insufficient: MonitorRunInfo
    now: datetime


def _insufficient(ws: Workspace, production: str, now: datetime) -> MonitorRunInfo:
    """Twenty logged entries against the rest of the log: too few to decide, as the policy says."""
    frame = ws.prediction_log().read(model=production).frame
    quality = frame[[c for c in frame.columns if c.startswith("quality.")]]
    features = quality.rename(columns=lambda c: c.removeprefix("quality.")).assign(site="", device="")
    stacked = {c: np.stack(frame[c].to_numpy()) for c in ("embedding", "decisions")}
    few = slice(0, 20)
    assessment = assess(
        DriftInputs(
            reference_features=features[20:],
            window_features=features[few].reset_index(drop=True),
            reference_embedding=stacked["embedding"][20:],
            window_embedding=stacked["embedding"][few],
            reference_rates=stacked["decisions"][20:].mean(axis=0),
            n_reference_decisions=len(frame) - 20,
            window_decisions=stacked["decisions"][few],
            labels=list(SUPERCLASSES),
        ),
        load_policy("default"),
    )
    assert assessment.status == "insufficient"
    with ws.registry() as registry:
        return registry.record_monitor_run(
            MonitorRunRecord(
                model=production,
                policy="default",
                policy_version="1",
                window_start=now - timedelta(hours=1),
                window_end=now,
                n_window=assessment.n_window,
                n_reference=assessment.n_reference,
                status="insufficient",
                summary=assessment.to_dict(),
                reasons=tuple(assessment.reasons),
            )
        )


@pytest.fixture(scope="module")
def monitored(tmp_path_factory: pytest.TempPathFactory, demo_store_root: Path) -> Monitored:
    root = tmp_path_factory.mktemp("monitoring-layer")
    settings = Settings(workspace=root, patient_salt="monitoring-layer")  # type: ignore[arg-type]
    artifact = root / "probe.bin"
    artifact.write_bytes(bytes(range(256)))
    with open_registry(settings.resolved_registry_url) as reg:
        production, candidate = (
            reg.register_model("probe", kind="task", task=TASK, artifact_uri=str(artifact)).ref
            for _ in range(2)
        )
    ws, now = Workspace(settings), datetime.now(UTC)
    store = DatasetStore.open(demo_store_root)
    traffic = add_traffic(ws, store, production=production, candidate=candidate, now=now)
    return Monitored(settings, traffic, _insufficient(ws, production, now), now)


def _runs(m: Monitored) -> list[MonitorRunInfo]:
    with open_registry(m.settings.resolved_registry_url) as reg:
        return reg.monitor_runs(task=TASK)


def test_runs_and_alarms_come_from_the_recorded_assessments(monitored: Monitored) -> None:
    traffic = monitored.traffic
    assert (traffic.ok_run.status, traffic.breach_run.status) == ("ok", "breach")
    runs = _runs(monitored)
    table = mon.runs_frame(runs)
    assert table["run"].tolist() == [monitored.insufficient.id, traffic.breach_run.id, traffic.ok_run.id]
    assert table["status"].tolist() == ["insufficient", "breach", "ok"]
    by_run = table.set_index("run")
    embedding = traffic.breach_run.summary["embedding"]
    assert by_run.at[traffic.breach_run.id, "embedding p"] == embedding["p_value"]
    assert np.isnan(by_run.at[monitored.insufficient.id, "embedding p"])
    assert by_run.at[traffic.ok_run.id, "report"].startswith("file://")

    alarms = mon.alarms_frame(runs)
    assert alarms["run"].tolist() == [traffic.breach_run.id]
    assert alarms.at[0, "reasons"].split("\n") == traffic.breach_run.reasons


def test_drift_per_group_is_the_smallest_adjusted_p_and_the_breached_features(monitored: Monitored) -> None:
    runs = _runs(monitored)
    drift = mon.drift_frame(runs)
    assert monitored.insufficient.id not in set(drift["run"])  # it tested nothing
    breach = drift[drift["run"] == monitored.traffic.breach_run.id].set_index("group")
    tests = monitored.traffic.breach_run.summary["features"]
    assert list(breach.index) == list(dict.fromkeys(t["group"] for t in tests))
    assert breach.index[0] == mon.WHOLE_WINDOW and f"site={NEW_SITE}" in breach.index
    site = [t for t in tests if t["group"] == f"site={NEW_SITE}"]
    smallest = min(site, key=lambda t: t["p_adjusted"])
    assert breach.at[f"site={NEW_SITE}", "min p adjusted"] == smallest["p_adjusted"]
    assert breach.at[f"site={NEW_SITE}", "most drifted"] == smallest["feature"]
    assert breach.at[f"site={NEW_SITE}", "breached features"].split(", ") == [
        t["feature"] for t in site if t["breach"]
    ]
    assert "baseline_ratio_max" in breach.at[f"site={NEW_SITE}", "breached features"]
    ok = drift[drift["run"] == monitored.traffic.ok_run.id]
    assert not ok["breach"].any()
    skipped_only = ok[ok["tests"] == 0]  # groups too small to test: no p-value
    assert len(skipped_only) and skipped_only["min p adjusted"].isna().all()
    assert (skipped_only["skipped"] > 0).all()

    series = mon.pvalue_series(drift, mon.runs_frame(runs))
    embedding = series[series["series"] == mon.EMBEDDING_SERIES].set_index("run")
    assert sorted(embedding.index) == sorted([monitored.traffic.ok_run.id, monitored.traffic.breach_run.id])
    assert embedding.at[monitored.traffic.breach_run.id, "breach"]
    assert not series["p"].isna().any()

    assert len(mon.feature_tests_frame(monitored.traffic.breach_run)) == len(tests)
    rates = mon.rates_frame(monitored.traffic.breach_run)
    assert rates["label"].tolist() == list(SUPERCLASSES)


def test_shadow_reports_show_the_worst_label_and_every_label(monitored: Monitored) -> None:
    report = monitored.traffic.shadow
    frame = mon.shadow_frame([report])
    row = frame.iloc[0]
    kappas = [a["kappa"] for a in report.agreement.values()]
    assert (row["candidate"], row["production"], row["passed"]) == (report.candidate, report.production, True)
    assert row["lowest kappa"] == min(kappas) and row["records"] == report.n_records
    assert row["highest flip rate"] == max(a["flip_rate"] for a in report.agreement.values())
    labels = mon.agreement_frame(report)
    assert labels["label"].tolist() == list(SUPERCLASSES) and labels["kappa"].tolist() == kappas
    assert mon.local_file(report.report_uri) is not None


def test_the_log_volume_counts_every_entry_and_reports_the_corrupt_part(monitored: Monitored) -> None:
    log = Workspace(monitored.settings).prediction_log()
    found = mon.log_volume(log, since=monitored.now - timedelta(days=7))
    assert found.total == monitored.traffic.n_logged
    per_source = found.volume.groupby("source")["n"].sum().to_dict()
    assert per_source == {"batch": monitored.traffic.n_logged // 2, "served": monitored.traffic.n_logged // 2}
    assert found.skipped["path"].tolist() == [str(monitored.traffic.corrupt_part)]
    assert found.skipped.at[0, "reason"]

    other = mon.log_volume(log, since=monitored.now - timedelta(days=7), task="another-task")
    assert other.total == 0 and other.volume.empty and len(other.skipped) == 1  # still reported
    later = mon.log_volume(log, since=monitored.now + timedelta(days=2))
    assert later.total == 0 and later.skipped.empty  # the corrupt day is outside the window


def test_report_files_are_found_only_on_this_machine(monitored: Monitored, tmp_path: Path) -> None:
    report = mon.local_file(monitored.traffic.breach_run.report_uri)
    assert report is not None and report.name == "report.html"
    assert mon.local_file(str(report)) == report
    assert mon.local_file("s3://bucket/monitoring/report.html") is None
    assert mon.local_file((tmp_path / "gone.html").as_uri()) is None
    assert mon.local_file(None) is None


def test_the_charts_draw_p_values_on_a_log_scale_with_the_level_and_the_volume(monitored: Monitored) -> None:
    runs = _runs(monitored)
    series = mon.pvalue_series(mon.drift_frame(runs), mon.runs_frame(runs))
    spec = drift_chart(series, alpha=0.01 / 3).to_dict()
    line, _points, rule = spec["layer"]
    assert line["encoding"]["y"]["scale"] == {"type": "log"}
    assert rule["mark"]["type"] == "rule"
    values = spec["datasets"][rule["data"]["name"]]
    assert values[0]["alpha"] == pytest.approx(0.01 / 3)
    shown = spec["datasets"][line["data"]["name"]]
    assert min(v["shown"] for v in shown) >= P_FLOOR
    assert len(drift_chart(series).to_dict()["layer"]) == 2  # no known level, no rule
    log = Workspace(monitored.settings).prediction_log()
    found = mon.log_volume(log, since=monitored.now - timedelta(days=7))
    assert volume_chart(found.volume).to_dict()["mark"]["type"] == "bar"
