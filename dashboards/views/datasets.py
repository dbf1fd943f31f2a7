"""Datasets: versions with counts, sources and sites; the label distribution and its shift."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from components.dashboard import datasets
from components.dashboard.charts import label_shift_chart
from components.dashboard.quality import short_md5
from components.workspace import Workspace
from dashboards.ui import current_dataset, first_steps, paginate, registry_or_stop, workspace


@st.cache_data(show_spinner="counting labels…", max_entries=32)
def _label_counts(path: str, mtime_ns: int, size: int) -> datasets.LabelCounts:
    """Label counts of one manifest file (keyed by its path, modification time and size)."""
    return datasets.label_counts(Path(path))


@st.cache_data(show_spinner=False, max_entries=256)
def _manifest_path(
    _ws: Workspace, workspace_root: str, dataset: str, md5: str, current: str | None
) -> str | None:
    """Where a version's manifest is (cached per version and checked-out version)."""
    found = datasets.version_manifest(_ws, dataset, md5)
    return None if found is None else str(found)


def labels_of(ws: Workspace, dataset: str, md5: str) -> datasets.LabelCounts | None:
    """The label counts of a dataset version, or None when its manifest is not on this machine."""
    from components.io.versioning import current_version

    path = _manifest_path(ws, str(ws.settings.workspace), dataset, md5, current_version(ws))
    if path is None:
        return None
    stat = Path(path).stat()
    return _label_counts(path, stat.st_mtime_ns, stat.st_size)


st.title("Datasets")
ws = workspace()
reg = registry_or_stop(ws)
dataset = current_dataset()
versions = reg.dataset_versions(dataset) if dataset else []
if not versions:
    first_steps("datasets")
    st.stop()

st.header(f"Versions of {dataset}", divider="gray")
win = paginate(len(versions), "versions")
page = versions[win.offset : win.offset + win.size]
st.dataframe(datasets.versions_frame(page).drop(columns="md5"), hide_index=True)

by_md5 = {v.dvc_md5: v for v in versions}
choice = st.selectbox(
    "version",
    [v.dvc_md5 for v in page],
    format_func=lambda m: (
        f"{short_md5(m)} ({by_md5[m].n_records:,} records, {by_md5[m].created_at:%Y-%m-%d %H:%M})"
    ),
    key="datasets-version",
)
version = by_md5[choice]
parent = by_md5.get(version.parent_md5) if version.parent_md5 else None
if parent is None and version.parent_md5:
    parent = reg.find_dataset_version(version.parent_md5)

cols = st.columns(4)
cols[0].metric(
    "records", f"{version.n_records:,}", None if parent is None else version.n_records - parent.n_records
)
cols[1].metric(
    "quarantined at ingest",
    f"{version.n_quarantined:,}",
    None if parent is None else version.n_quarantined - parent.n_quarantined,
    delta_color="inverse",
)
cols[2].metric(
    "patients", f"{version.n_patients:,}", None if parent is None else version.n_patients - parent.n_patients
)
cols[3].metric("previous version", short_md5(parent.dvc_md5) if parent else "none (first version)")

st.subheader("Sources, sites and splits" + (" against the previous version" if parent else ""))
cols = st.columns(3)
for col, key, what in zip(cols, ("sources", "sites", "splits"), ("source", "site", "split"), strict=True):
    col.dataframe(
        datasets.count_shift(
            version.statistics.get(key), parent.statistics.get(key) if parent else None, what
        ),
        hide_index=True,
    )

st.subheader("Label distribution" + (" and its shift from the previous version" if parent else ""))
now = labels_of(ws, version.dataset, version.dvc_md5)
if now is None:
    st.warning(
        f"The manifest of version {short_md5(version.dvc_md5)} is neither checked out nor in the local DVC "
        f"cache: `ecgops data checkout {short_md5(version.dvc_md5)}` restores it."
    )
    st.stop()
before = labels_of(ws, parent.dataset, parent.dvc_md5) if parent else None
if parent is not None and before is None:
    st.caption(f"The manifest of the previous version {short_md5(parent.dvc_md5)} is not on this machine.")
shift = datasets.label_shift(now, before)
if shift.empty:
    st.caption("No record of this version carries a label.")
    st.stop()
cols = st.columns(3)
cols[0].metric("distinct labels", len(shift[shift["records"] > 0]))
cols[1].metric("labelled records", f"{now.n_records:,}")
if before is not None:
    cols[2].metric(
        "label mix shift (total variation)",
        f"{datasets.total_variation(now, before):.3f}",
        help="0: the same mix of labels as the previous version; 1: no label in common",
    )
st.altair_chart(label_shift_chart(shift), width="stretch")
st.dataframe(
    shift,
    hide_index=True,
    column_config={
        c: st.column_config.NumberColumn(format="%.2f")
        for c in ("share %", "previous share %", "change (pp)")
        if c in shift
    },
)
