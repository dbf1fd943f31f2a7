"""Monitoring runs and shadow reports: what the API stores and audits, what it refuses, and the rules the
database enforces on its own (written around the API)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from components.registry import (
    InvalidArgumentError,
    MonitorRunRecord,
    NotFoundError,
    Registry,
    ShadowReportRecord,
)
from components.registry.models import MonitorRun, ShadowReport

from .helpers import SHA

TASK = "af"
START = datetime(2026, 12, 1, tzinfo=UTC)
AGREEMENT = {"AF": {"label": "AF", "n": 400, "agreement": 0.97, "kappa": 0.88, "flip_rate": 0.03}}


def _model(reg: Registry, name: str = "af-probe", task: str = TASK) -> str:
    return reg.register_model(name, kind="task", task=task, artifact_uri="x", sha256=SHA).ref


def _run(model: str, status: str = "ok", **changes: object) -> MonitorRunRecord:
    record = MonitorRunRecord(
        model=model,
        policy="af-drift",
        policy_version="1",
        window_start=START,
        window_end=START + timedelta(days=7),
        n_window=1200,
        n_reference=5000,
        status=status,  # type: ignore[arg-type]
        summary={"psi": {"AF": 0.31 if status == "breach" else 0.02}},
        reasons=("AF: PSI 0.310 > 0.200",) if status == "breach" else (),
        report_uri="/reports/monitor/1.html",
    )
    return replace(record, **changes)  # type: ignore[arg-type]


def _shadow(
    candidate: str, production: str | None, passed: bool = True, **changes: object
) -> ShadowReportRecord:
    record = ShadowReportRecord(
        candidate=candidate,
        production=production,
        source="log:2026-12-01..2026-12-07",
        n_records=400,
        agreement=AGREEMENT,
        passed=passed,
        reasons=("PASS (shadow.min_records) 400 records",) if passed else ("FAIL (shadow.kappa.AF) 0.41",),
    )
    return replace(record, **changes)  # type: ignore[arg-type]


def test_monitor_runs_are_stored_newest_first_and_each_is_audited(reg: Registry) -> None:
    model = _model(reg)
    ok = reg.record_monitor_run(_run(model))
    local = timezone(timedelta(hours=2))
    breach = reg.record_monitor_run(
        _run(model, "breach", window_start=datetime(2026, 12, 8, 2, tzinfo=local), n_window=900)
    )
    assert (ok.task, ok.model, ok.status, ok.reasons) == (TASK, model, "ok", [])
    assert breach.window_start == datetime(2026, 12, 8, 0, tzinfo=UTC)  # stored in UTC, the same instant
    assert breach.summary == {"psi": {"AF": 0.31}} and breach.created_by == "tester"
    assert [r.id for r in reg.monitor_runs(task=TASK)] == [breach.id, ok.id]
    assert [r.status for r in reg.monitor_runs(model=model, offset=1, limit=5)] == ["ok"]
    assert reg.count_monitor_runs(task=TASK) == 2 and reg.count_monitor_runs(task="other") == 0
    entries = reg.audit(entity_id=model, limit=2)
    assert [e.action for e in entries] == ["monitor.breach", "monitor.run"]
    assert (
        "breach: AF: PSI 0.310 > 0.200" in entries[0].summary and entries[0].reason == "AF: PSI 0.310 > 0.200"
    )
    assert entries[0].details["monitor_run_id"] == breach.id
    assert "ok" in entries[1].summary and entries[1].reason is None


def test_a_monitor_run_and_its_audit_entry_commit_together(reg: Registry) -> None:
    model = _model(reg)
    before = reg.count_audit()
    with pytest.raises(RuntimeError), reg.atomic():
        reg.record_monitor_run(_run(model, "breach"))
        raise RuntimeError("crash before commit")
    assert reg.count_monitor_runs() == 0 and reg.count_audit() == before


def test_monitor_runs_the_api_refuses(reg: Registry) -> None:
    model = _model(reg)
    foundation = reg.register_model("fm", kind="foundation", artifact_uri="x", sha256=SHA).ref
    refused = {
        "status must be one of": _run(model, "drifting"),
        "a breach needs its reasons": _run(model, "breach", reasons=()),
        "window_start must be timezone-aware": _run(model, window_start=datetime(2026, 12, 1)),
        "the window ends": _run(model, window_end=START - timedelta(days=1)),
        "n_window must be >= 0": _run(model, n_window=-1),
        "summary must be JSON with finite numbers": _run(model, summary={"psi": float("nan")}),
        "is a foundation model": _run(foundation),
    }
    for message, record in refused.items():
        with pytest.raises(InvalidArgumentError, match=message):
            reg.record_monitor_run(record)
    with pytest.raises(NotFoundError):
        reg.record_monitor_run(_run("missing@1"))
    assert reg.count_monitor_runs() == 0


def test_database_refuses_an_unknown_monitor_status_and_a_reversed_window(reg: Registry) -> None:
    run = reg.record_monitor_run(_run(_model(reg)))
    for values in ({"status": "drifting"}, {"window_end": START - timedelta(days=1)}, {"n_window": -5}):
        with Session(reg.engine) as s, pytest.raises(IntegrityError), s.begin():
            s.execute(update(MonitorRun).where(MonitorRun.id == run.id).values(**values))
    assert reg.monitor_runs()[0].status == "ok"


def test_database_refuses_a_monitor_run_whose_task_is_not_its_models(reg: Registry) -> None:
    run = reg.record_monitor_run(_run(_model(reg)))
    with Session(reg.engine) as s, pytest.raises(IntegrityError), s.begin():
        s.execute(update(MonitorRun).where(MonitorRun.id == run.id).values(task="other"))


def test_shadow_reports_are_stored_listed_and_audited(reg: Registry) -> None:
    production, candidate = _model(reg), _model(reg)
    first = reg.record_shadow_report(_shadow(candidate, None))
    second = reg.record_shadow_report(
        _shadow(candidate, production, passed=False, metrics_delta={"macro_auroc": -0.04})
    )
    assert (first.production, first.production_model_id, first.task) == (None, None, TASK)
    assert (second.candidate, second.production) == (candidate, production)
    assert second.agreement == AGREEMENT and second.metrics_delta == {"macro_auroc": -0.04}
    assert [r.id for r in reg.shadow_reports(task=TASK)] == [second.id, first.id]
    assert [r.id for r in reg.shadow_reports(candidate=production)] == []
    assert reg.count_shadow_reports(candidate=candidate) == 2
    entries = reg.audit(action="shadow.reported")
    assert [e.entity_id for e in entries] == [candidate, candidate]
    assert entries[0].summary == (
        f"shadow of {candidate} against {production} on 400 records from log:2026-12-01..2026-12-07: failed"
    )
    assert (
        entries[0].reason == "FAIL (shadow.kappa.AF) 0.41"
        and entries[0].details["shadow_report_id"] == second.id
    )
    assert "against no production model" in entries[1].summary


def test_latest_shadow_report_is_the_newest_of_that_pair(reg: Registry) -> None:
    old_production, production, candidate, other = (_model(reg) for _ in range(4))
    assert reg.latest_shadow_report(candidate, production) is None
    passed = reg.record_shadow_report(_shadow(candidate, production))
    reg.record_shadow_report(_shadow(candidate, old_production, passed=False))
    reg.record_shadow_report(_shadow(other, production, passed=False))
    without = reg.record_shadow_report(_shadow(candidate, None, passed=False))
    latest = reg.latest_shadow_report(candidate, production)
    assert latest is not None and latest.id == passed.id and latest.passed
    failed = reg.record_shadow_report(_shadow(candidate, production, passed=False))
    latest = reg.latest_shadow_report(candidate, production)
    assert latest is not None and latest.id == failed.id and not latest.passed
    by_none = reg.latest_shadow_report(candidate, None)
    assert by_none is not None and by_none.id == without.id


def test_shadow_reports_the_api_refuses(reg: Registry) -> None:
    candidate, elsewhere = _model(reg), _model(reg, "sinus-probe", task="sinus")
    refused = {
        "cannot shadow itself": _shadow(candidate, candidate),
        "of task af, the production model sinus-probe@1 of task sinus": _shadow(candidate, elsewhere),
        "a failed shadow report needs its reasons": _shadow(candidate, None, passed=False, reasons=()),
        "n_records must be >= 0": _shadow(candidate, None, n_records=-1),
        "source must not be empty": _shadow(candidate, None, source=" "),
        "agreement must be JSON with finite numbers": _shadow(
            candidate, None, agreement={"AF": {"kappa": float("nan")}}
        ),
    }
    for message, record in refused.items():
        with pytest.raises(InvalidArgumentError, match=message):
            reg.record_shadow_report(record)
    assert reg.count_shadow_reports() == 0 and reg.audit(action="shadow.reported") == []


def test_database_refuses_a_shadow_report_of_a_model_against_itself_or_another_task(reg: Registry) -> None:
    candidate, production = _model(reg), _model(reg)
    elsewhere = reg.model(_model(reg, "sinus-probe", task="sinus")).id
    report = reg.record_shadow_report(_shadow(candidate, production))
    for values in (
        {"production_model_id": report.candidate_model_id},
        {"production_model_id": elsewhere},
        {"candidate_model_id": elsewhere},
        {"n_records": -1},
    ):
        with Session(reg.engine) as s, pytest.raises(IntegrityError), s.begin():
            s.execute(update(ShadowReport).where(ShadowReport.id == report.id).values(**values))
    assert reg.latest_shadow_report(candidate, production) == report
