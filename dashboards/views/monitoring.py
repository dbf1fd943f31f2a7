"""Monitoring: alarms, drift over time per site and device, shadow evaluations, prediction-log volume."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import streamlit as st

from components.dashboard import monitoring as mon
from components.dashboard.charts import P_FLOOR, drift_chart, volume_chart
from components.dashboard.models import inline_images
from components.monitoring.errors import MonitoringError
from components.monitoring.policy import load_policy
from components.predictions.errors import PredictionLogError
from components.registry import MonitorRunInfo
from components.workspace import Workspace
from dashboards.ui import first_steps, paginate, registry_or_stop, workspace

ALL = "(all)"
HISTORY_RUNS = 200  # the newest monitoring runs the alarms, the chart and the run table read
LOG_DAYS = (7, 30, 90)
LOG_CACHE_S = 60
SHOWN_REASONS = 5  # a breach's first reasons in the run's message; its tables have every test
REPORT = st.column_config.LinkColumn(display_text="open")
SMALL = st.column_config.NumberColumn(format="%.3g")  # p-values span hundreds of orders of magnitude
NUMBERS = {name: SMALL for name in ("p", "p adjusted", "embedding p", "MMD²", "KS D")}


@st.cache_data(show_spinner=False)
def _check_alpha(policy: str, version: str) -> float | None:
    """The level each check of an assessment is held to, when that version of the run's policy is here."""
    try:
        found = load_policy(policy)
    except MonitoringError:
        return None
    return found.check_alpha() if str(found.version) == version else None


@st.cache_data(ttl=LOG_CACHE_S, show_spinner=False)
def _log_volume(_ws: Workspace, url: str, since: datetime, task: str | None) -> mon.LogVolume:
    """The log's volume since ``since`` (read again after a minute: the log grows)."""
    return mon.log_volume(_ws.prediction_log(), since=since, task=task)


def _run_label(run: MonitorRunInfo) -> str:
    return f"run {run.id} · {run.model} · {run.window_end:%Y-%m-%d %H:%M} UTC · {run.status}"


def _run_details(run: MonitorRunInfo) -> None:
    """One run: its reasons, every feature test, the positive rates and its report when it is here."""
    shown = run.reasons[:SHOWN_REASONS]
    more = len(run.reasons) - len(shown)
    (st.error if run.status == "breach" else st.info if run.status == "insufficient" else st.success)(
        f"{run.status.upper()}:"
        + "".join(f"\n- {r}" for r in shown)
        + (f"\n\n… and {more} more (the tables below have every test)" if more else "")
    )
    tests = mon.feature_tests_frame(run)
    if not tests.empty:
        st.dataframe(tests, hide_index=True, column_config=NUMBERS)
    rates = mon.rates_frame(run)
    if not rates.empty:
        st.dataframe(rates, hide_index=True, column_config=NUMBERS)
    report = mon.local_file(run.report_uri)
    if report is not None and report.suffix == ".html":
        with st.expander(f"read the report ({report})"):
            st.iframe(inline_images(report), height=900)
    elif run.report_uri:
        st.caption(f"report: `{run.report_uri}` (not on this machine)")


st.title("Monitoring")
ws = workspace()
reg = registry_or_stop(ws)
task = st.selectbox("task", [ALL, *reg.model_tasks()], key="monitoring-task")
task_filter = None if task == ALL else task
runs = reg.monitor_runs(task=task_filter, limit=HISTORY_RUNS)
n_runs = reg.count_monitor_runs(task=task_filter)
read_note = f"the newest {len(runs)} of {n_runs}" if n_runs > len(runs) else f"all {n_runs}"

# ---------------------------------------------------------------- alarms
st.header("Alarms", divider="gray")
if not runs:
    first_steps("monitoring")
else:
    alarms = mon.alarms_frame(runs)
    if alarms.empty:
        st.success(f"No breach in {read_note} monitoring runs; the newest: {_run_label(runs[0])}.")
    else:
        newest = alarms.iloc[0]
        st.error(
            f"{len(alarms)} breach(es) in {read_note} monitoring runs; the newest: run {newest['run']} "
            f"of {newest['model']}."
        )
        st.dataframe(alarms, hide_index=True, column_config={"report": REPORT})

# ---------------------------------------------------------------- drift over time
st.header("Drift over time per site", divider="gray")
if not runs:
    st.caption("Each `ecgops monitor TASK` run adds a point per site and device of its window here.")
else:
    table = mon.runs_frame(runs)
    drift = mon.drift_frame(runs)
    choices = [*dict.fromkeys(drift["group"]), mon.EMBEDDING_SERIES]
    default = [c for c in choices if not c.startswith("device=")]  # per site; devices on demand
    chosen = st.multiselect("groups", choices, default=default, key="monitoring-groups")
    series = mon.pvalue_series(drift, table)
    series = series[series["series"].isin(chosen)]
    alphas = {_check_alpha(r.policy, r.policy_version) for r in runs}
    alpha = alphas.pop() if len(alphas) == 1 else None
    if series.empty:
        st.caption("No p-value to draw (insufficient windows test nothing), or no group chosen.")
    else:
        st.altair_chart(drift_chart(series, alpha), width="stretch")
        st.caption(
            "per group, the smallest Bonferroni-adjusted KS p-value of its features; the embedding's "
            f"MMD² permutation p-value; squares breached; p below {P_FLOOR:g} drawn at it"
            + ("" if alpha is None else f"; dashed: each check's level (α/3 = {alpha:.3g})")
        )
    st.subheader("Runs")
    st.dataframe(table, hide_index=True, column_config={"report": REPORT, **NUMBERS})
    by_id = {run.id: run for run in runs}
    chosen_run = st.selectbox(
        "run", list(by_id), format_func=lambda i: _run_label(by_id[i]), key="monitoring-run"
    )
    _run_details(by_id[chosen_run])

# ---------------------------------------------------------------- shadow evaluations
st.header("Shadow evaluations", divider="gray")
n_shadow = reg.count_shadow_reports(task=task_filter)
if n_shadow == 0:
    first_steps("shadow")
else:
    win = paginate(n_shadow, "shadow")
    reports = reg.shadow_reports(task=task_filter, offset=win.offset, limit=win.size)
    st.dataframe(mon.shadow_frame(reports), hide_index=True, column_config={"report file": REPORT})
    by_report = {r.id: r for r in reports}
    report_id = st.selectbox(
        "shadow report",
        list(by_report),
        format_func=lambda i: f"#{i}: {by_report[i].candidate} beside {by_report[i].production or '(none)'}",
        key="shadow-report",
    )
    report = by_report[report_id]
    (st.success if report.passed else st.error)(
        ("PASSED" if report.passed else "FAILED") + "".join(f"\n- {r}" for r in report.reasons)
    )
    st.dataframe(mon.agreement_frame(report), hide_index=True)
    if report.metrics_delta:
        with st.expander("candidate − production metrics"):
            st.json(report.metrics_delta)

# ---------------------------------------------------------------- prediction log
st.header("Prediction log volume", divider="gray")
days = st.selectbox("window", LOG_DAYS, format_func=lambda d: f"last {d} days", key="log-days")
since = datetime.combine(datetime.now(UTC).date() - timedelta(days=days - 1), time(), tzinfo=UTC)
log_url = ws.prediction_log().url
try:
    found = _log_volume(ws, log_url, since, task_filter)
except PredictionLogError as exc:
    st.error(str(exc))
    st.stop()
if not found.skipped.empty:
    st.warning(
        f"{len(found.skipped)} part(s) of the log could not be read and were skipped:"
        + "".join(f"\n- `{row.path}`: {row.reason}" for row in found.skipped.itertuples())
    )
if found.volume.empty:
    first_steps("predictions")
else:
    cols = st.columns(3)
    cols[0].metric("predictions logged", f"{found.total:,}")
    cols[1].metric("models", found.volume["model_ref"].nunique())
    cols[2].metric("days with entries", found.volume["date"].nunique())
    st.altair_chart(volume_chart(found.volume), width="stretch")
    st.dataframe(found.volume, hide_index=True)
st.caption(f"log `{log_url}` since {since:%Y-%m-%d} (UTC), read again after {LOG_CACHE_S} s")
