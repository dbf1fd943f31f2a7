"""Models: the registry table, metrics with CIs across versions, gate verdicts, documents, lineage graph."""

from __future__ import annotations

import streamlit as st

from components.dashboard import models as m
from components.dashboard.charts import metric_ci_chart
from components.registry import MetricInfo, NotFoundError, to_jsonable
from dashboards.ui import first_steps, paginate, registry_or_stop, workspace

ALL = "(all)"
HISTORY_VERSIONS = 50

st.title("Models")
ws = workspace()
reg = registry_or_stop(ws)
if reg.count_models() == 0:
    first_steps("models")
    st.stop()

# ---------------------------------------------------------------- the registry table
st.header("Registry", divider="gray")
cols = st.columns(4)
task = cols[0].selectbox("task", [ALL, *reg.model_tasks()], key="models-task")
kind = cols[1].selectbox("kind", [ALL, "foundation", "task"], key="models-kind")
stage = cols[2].selectbox(
    "stage", [ALL, "candidate", "staging", "production", "archived"], key="models-stage"
)
names = reg.model_names(task=None if task == ALL else task, kind=None if kind == ALL else kind)
name = cols[3].selectbox("name", [ALL, *names], key="models-name")
filters = {
    "task": None if task == ALL else task,
    "kind": None if kind == ALL else kind,
    "stage": None if stage == ALL else stage,
    "name": None if name == ALL else name,
}
total = reg.count_models(**filters)
if total == 0:
    st.caption("No model matches these filters.")
    st.stop()
win = paginate(total, "models")
page = reg.model_page(**filters, offset=win.offset, limit=win.size)
st.dataframe(m.models_frame(page), hide_index=True)

by_ref = {info.ref: info for info in page}
ref = st.selectbox("model", list(by_ref), key="models-model")
model = by_ref[ref]

# ---------------------------------------------------------------- the chosen model
st.header(model.ref, divider="gray")
cols = st.columns(4)
cols[0].metric("kind", model.kind)
cols[1].metric("task", model.task or "—")
cols[2].metric("stage", model.stage or "—")
cols[3].metric("gate", model.gate_verdict or "not gated")
with st.expander("registry entry"):
    st.json(to_jsonable(model))

metrics_tab, gates_tab, docs_tab, lineage_tab = st.tabs(
    ["Metrics across versions", "Gate verdicts", "Reports and model card", "Lineage"]
)

with metrics_tab:
    scope_choices = {f"versions of {model.name}": {"name": model.name}}
    if model.task:
        scope_choices[f"every model of task {model.task}"] = {"task": model.task}
    scope_label = st.radio("compare", list(scope_choices), horizontal=True, key="models-scope")
    scope = scope_choices[scope_label]
    keys = reg.metric_keys(**scope)
    if not keys:
        st.caption("No metrics recorded for these models yet (evaluation records them).")
    else:
        cols = st.columns(3)
        metric_names = sorted({k[2] for k in keys})
        default_metric = next(
            (n for n in ("macro_auroc", "probe_macro_auroc", "auroc") if n in metric_names), metric_names[0]
        )
        metric = cols[0].selectbox("metric", metric_names, index=metric_names.index(default_metric))
        splits = sorted({k[0] for k in keys if k[2] == metric})
        split = cols[1].selectbox("split", splits, index=splits.index("test") if "test" in splits else 0)
        cohorts = sorted({k[1] for k in keys if k[2] == metric and k[0] == split})
        chosen = cols[2].multiselect(
            "cohorts", cohorts, default=["all"] if "all" in cohorts else cohorts[:1], key="models-cohorts"
        )
        points = [
            p
            for p in reg.metric_history(**scope, metric=metric, split=split, last=HISTORY_VERSIONS)
            if p.cohort in chosen
        ]
        frame = m.metrics_frame(points)
        if frame.empty:
            st.caption("Pick at least one cohort.")
        else:
            st.altair_chart(metric_ci_chart(frame), width="stretch")
            st.caption(f"the newest {HISTORY_VERSIONS} models at most; bars are 95 % confidence intervals")
            st.dataframe(frame.drop(columns="series"), hide_index=True)
    own: list[MetricInfo] = reg.metrics(model.id)
    if own:
        st.subheader(f"All metrics of {model.ref}")
        st.dataframe([to_jsonable(x) for x in own], hide_index=True)

with gates_tab:
    gates = reg.gate_decisions(model.id)
    if not gates:
        st.caption(f"{model.ref} has no gate decision yet (evaluation gates record one).")
    else:
        latest = gates[0]
        (st.success if latest.verdict == "pass" else st.error)(
            f"gate {latest.policy}: {latest.verdict.upper()}"
            + ("" if not latest.reasons else "\n\n" + "\n".join(f"- {r}" for r in latest.reasons))
        )
        st.dataframe(m.gates_frame(gates), hide_index=True)
    changes = reg.audit_page(entity_type="model", entity_id=model.ref, action="stage.changed", limit=20)
    if changes:
        st.subheader("Stage changes")
        st.dataframe(
            [
                {
                    "at": e.at,
                    "change": e.summary,
                    "forced": bool(e.details.get("forced")),
                    "reason": e.reason or "",
                    "by": e.actor,
                }
                for e in changes
            ],
            hide_index=True,
        )

with docs_tab:
    documents = m.model_documents(m.document_directories(reg, model))
    if not documents:
        st.caption(
            f"No evaluation report or model card for {model.ref} on this machine (`ecgops evaluate "
            f"{model.ref}` writes them; the registry records where)."
        )
    for i, doc in enumerate(documents):
        st.markdown(f"**{doc.kind}**: `{doc.path}`")
        data = doc.path.read_bytes()
        st.download_button(
            f"download {doc.title}",
            data,
            file_name=doc.path.name,
            key=f"models-doc-{i}",
            icon=":material/download:",
        )
        if doc.path.suffix == ".md":
            with st.expander(f"read {doc.title}"):
                st.markdown(data.decode("utf-8", errors="replace"))
        elif doc.path.suffix == ".html":
            with st.expander(f"read {doc.title}"):
                st.iframe(m.inline_images(doc.path), height=900)

with lineage_tab:
    try:
        up = reg.lineage_up(model=model.id)
        down = reg.lineage_down(model=model.id)
    except NotFoundError as exc:
        st.error(str(exc))
    else:
        st.graphviz_chart(m.lineage_dot(model.id, up, down), width="stretch")
        st.caption(
            "left to right: data, runs, checks and parent models it came from; then the Bentos and models "
            f"built on it (at most {m.MAX_GRAPH_NODES} nodes). CLI: `ecgops registry lineage {model.ref}`"
        )
