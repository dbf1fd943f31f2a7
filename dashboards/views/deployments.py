"""Deployments: Bentos per task and stage (URI, sha256, the exact pull command), all Bentos, the audit log."""

from __future__ import annotations

import streamlit as st

from components.dashboard import deployments as d
from dashboards.ui import first_steps, paginate, registry_or_stop, workspace

ALL = "(all)"

st.title("Deployments")
ws = workspace()
reg = registry_or_stop(ws)

# ---------------------------------------------------------------- what a deployment team pulls
st.header("Bentos per task and stage", divider="gray")
slots = reg.deployment_slots()
if not slots:
    first_steps("deployments")
else:
    st.dataframe(
        d.slots_frame(slots),
        hide_index=True,
        column_config={"sha256": st.column_config.TextColumn(width="medium")},
    )
    for slot in slots:
        with st.container(border=True):
            st.markdown(f"**{slot.task} @ {slot.stage}** — model `{slot.model.ref}`")
            if slot.bento is None:
                st.caption(f"{slot.model.ref} has not been packaged yet: `ecgops package {slot.model.ref}`")
                continue
            st.code(slot.pull_command, language="bash")
            st.caption(
                f"bento `{slot.bento.tag}` · `{slot.bento.artifact_uri}` · sha256 `{slot.bento.sha256}`"
            )

# ---------------------------------------------------------------- every Bento
st.header("All Bentos", divider="gray")
n_bentos = reg.count_bentos()
if n_bentos == 0:
    st.caption("No Bento has been built yet.")
else:
    task = st.selectbox("task", [ALL, *reg.model_tasks()], key="deployments-task")
    task_filter = None if task == ALL else task
    total = reg.count_bentos(task=task_filter)
    win = paginate(total, "bentos")
    st.dataframe(
        d.bentos_frame(reg.bento_page(task=task_filter, offset=win.offset, limit=win.size)), hide_index=True
    )

# ---------------------------------------------------------------- the audit log
st.header("Audit log", divider="gray")
cols = st.columns(3)
action = cols[0].selectbox("action", [ALL, *reg.audit_actions()], key="audit-action")
entity = cols[1].text_input("entity id (exact, e.g. a model name@version)", key="audit-entity").strip()
actor = cols[2].text_input("actor", key="audit-actor").strip()
filters = {"action": None if action == ALL else action, "entity_id": entity or None, "actor": actor or None}
total = reg.count_audit(**filters)
if total == 0:
    st.caption("No audit entry matches." if any(filters.values()) else "The audit log is empty.")
else:
    win = paginate(total, "audit", default_size=50)
    st.dataframe(d.audit_frame(reg.audit_page(**filters, offset=win.offset, limit=win.size)), hide_index=True)
