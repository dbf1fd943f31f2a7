"""ecgops dashboards: ``ecgops dashboard`` (or ``streamlit run dashboards/app.py``) on a workspace."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboards.ui import DATASET_KEY, registry_or_stop, workspace

VIEWS = Path(__file__).resolve().parent / "views"

st.set_page_config(page_title="ecgops", page_icon=":material/monitor_heart:", layout="wide")
navigation = st.navigation(
    [
        st.Page(VIEWS / "data_quality.py", title="Data quality", icon=":material/fact_check:", default=True),
        st.Page(VIEWS / "datasets.py", title="Datasets", icon=":material/database:"),
        st.Page(VIEWS / "models.py", title="Models", icon=":material/model_training:"),
        st.Page(VIEWS / "deployments.py", title="Deployments", icon=":material/rocket_launch:"),
        st.Page(VIEWS / "monitoring.py", title="Monitoring", icon=":material/monitoring:"),
    ]
)

ws = workspace()
with st.sidebar:
    st.caption(f"workspace `{ws.settings.workspace}`")
    datasets = ws.datasets(registry_or_stop(ws) if ws.registry_exists() else None)
    if datasets:
        if st.session_state.get(DATASET_KEY) not in datasets:
            st.session_state[DATASET_KEY] = datasets[0]
        st.selectbox("dataset", datasets, key=DATASET_KEY)

navigation.run()
