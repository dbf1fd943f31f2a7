"""Data quality: validation runs per dataset version, expectation outcomes and trend, the quarantine."""

from __future__ import annotations

import streamlit as st

from components.dashboard import quality
from components.dashboard.charts import expectation_trend_chart
from components.validation import ReviewError, decide
from components.workspace import Workspace
from dashboards.ui import current_dataset, first_steps, paginate, registry_or_stop, workspace

TREND_RUNS = 20
STATUS_CHOICES = {
    "awaiting review": "quarantined",
    "accepted": "accepted",
    "rejected": "rejected",
    "all": None,
}
FLASH_KEY = "steward-flash"


@st.cache_data(show_spinner="reading the quarantine…", max_entries=16)
def _listing(
    _ws: Workspace, registry_url: str, dataset: str, run_name: str, decisions: tuple[int, int]
) -> quality.QuarantineListing | None:
    """The quarantine list, read again only when a validation run or a steward decision is added."""
    return quality.quarantine_listing(_ws, dataset)


st.title("Data quality")
ws = workspace()
reg = registry_or_stop(ws)
dataset = current_dataset()
if dataset is None:
    first_steps("quality")
    st.stop()

# ---------------------------------------------------------------- validation runs per dataset version
st.header("Validation runs", divider="gray")
versions = reg.dataset_versions(dataset)
version_choices: dict[str, str | None] = {"all versions": None}
version_choices |= {
    f"{quality.short_md5(v.dvc_md5)} ({v.n_records:,} records, {v.created_at:%Y-%m-%d})": v.dvc_md5
    for v in versions
}
version_label = st.selectbox("dataset version", list(version_choices), key="quality-version")
md5 = version_choices[version_label]
n_runs = reg.count_validation_runs(dataset=dataset, dataset_version_md5=md5)
if n_runs == 0:
    st.caption(
        f"No validation of {dataset!r} is recorded in the registry yet: `ecgops validate --dataset {dataset} "
        "--dataset-version MD5` records one against a version (the retraining flow always does)."
    )
else:
    win = paginate(n_runs, "runs")
    runs = reg.validation_runs(dataset=dataset, dataset_version_md5=md5, offset=win.offset, limit=win.size)
    st.dataframe(quality.runs_frame(runs), hide_index=True)

    # ------------------------------------------------------------ expectations: latest outcome and trend
    st.header("Expectations", divider="gray")
    recent = reg.validation_runs(dataset=dataset, dataset_version_md5=md5, limit=TREND_RUNS)[::-1]
    outcomes, missing = quality.outcomes_frame(recent)
    if missing:
        st.caption(
            f"Runs {', '.join(map(str, missing))}: their result.json is not on this machine; the registry "
            "lists their failed expectations in the table above."
        )
    if not outcomes.empty:
        latest_run = int(outcomes["run"].max())
        latest = outcomes[outcomes["run"] == latest_run]
        failed = latest[~latest["passed"]]
        cols = st.columns(4)
        cols[0].metric(f"expectations (run {latest_run})", len(latest))
        for col, severity in zip(cols[1:], ("block", "quarantine", "warn"), strict=True):
            col.metric(f"failed: {severity}", int((failed["severity"] == severity).sum()))
        st.dataframe(
            latest.sort_values(["passed", "severity"])[
                [
                    "expectation",
                    "suite",
                    "severity",
                    "passed",
                    "unexpected",
                    "checked",
                    "unexpected %",
                    "description",
                ]
            ],
            hide_index=True,
            column_config={"unexpected %": st.column_config.NumberColumn(format="%.2f")},
        )
        st.subheader(f"Trend over the last {outcomes['run'].nunique()} runs")
        st.dataframe(quality.trend_matrix(outcomes))
        if (~outcomes["passed"] & outcomes["unexpected %"].notna()).any():
            st.altair_chart(expectation_trend_chart(outcomes), width="stretch")
            st.caption("records failing each record-level expectation that failed in one of these runs")

# ---------------------------------------------------------------- the quarantine and steward decisions
st.header("Quarantine", divider="gray")
if flash := st.session_state.pop(FLASH_KEY, None):
    st.success(flash, icon=":material/how_to_reg:")
status_label = st.radio("show", list(STATUS_CHOICES), horizontal=True, key="quarantine-status")
run_name = quality.latest_run_name(ws, dataset)
everything = (
    None
    if run_name is None
    else _listing(ws, ws.registry_url, dataset, run_name, reg.steward_decision_stamp(dataset))
)
listing = None if everything is None else everything.only(STATUS_CHOICES[status_label])
if listing is None:
    st.caption(f"{dataset!r} has not been validated on this machine yet.")
    first_steps("quality")
    st.stop()

cols = st.columns(3)
for col, (status, count) in zip(cols, listing.counts.items(), strict=True):
    col.metric(status, f"{count:,}")
st.caption(f"latest validation run {listing.run_name}; decisions apply on the next `ecgops validate`")
if listing.table.empty:
    st.caption("No record with this status.")
    st.stop()

win = paginate(len(listing.table), "quarantine")
rows, _ = listing.page(win.page, win.size)
st.dataframe(
    rows[["record_id", "source_record", "split", "status", "reasons_text", "decision_note", "reviewer"]],
    hide_index=True,
    column_config={"reasons_text": "reasons", "decision_note": "note"},
)

labels = {
    str(r.record_id): f"{r.record_id}  {r.source_record}  ({r.status})" for r in rows.itertuples(index=False)
}
record_id = st.selectbox("record", list(labels), format_func=labels.__getitem__, key="quarantine-record")
record = rows.set_index("record_id").loc[record_id]
left, right = st.columns([2, 3])
with left:
    st.subheader(f"Record {record_id}")
    st.write(f"source `{record['source_record']}` · split {record['split']} · status **{record['status']}**")
    st.dataframe(quality.reasons_frame(str(record["reasons"])), hide_index=True)
    history = reg.steward_decision_history(dataset, record_id)
    if history:
        st.caption("decisions, newest first (the first one counts)")
        for d in history:
            st.write(f"- {d.decided_at:%Y-%m-%d %H:%M} **{d.decision}** by {d.reviewer}: {d.note}")
    with st.form("steward-decision", clear_on_submit=True):
        st.write("Steward decision (the same as `ecgops review accept|reject`)")
        decision = st.radio("decision", ("reject", "accept"), horizontal=True, key="steward-decision-choice")
        note = st.text_area("note (why)", key="steward-note")
        reviewer = st.text_input("reviewer", value=ws.settings.actor, key="steward-reviewer")
        submitted = st.form_submit_button("Record decision", type="primary")
    if submitted:
        try:
            made = decide(ws, [record_id], decision, note, dataset=dataset, reviewer=reviewer.strip() or None)
        except ReviewError as exc:
            st.error(str(exc))
        else:
            d = made[0]
            st.session_state[FLASH_KEY] = f"{d.decision} {d.record_id} recorded by {d.reviewer}: {d.note}"
            st.rerun()
with right:
    try:
        plot = quality.record_plot(ws, dataset, record_id, str(record["reasons"]))
    except LookupError as exc:
        st.warning(str(exc))
    else:
        st.image(str(plot), caption="12-lead ECG, 25 mm/s, 10 mm/mV; flagged leads in red")
