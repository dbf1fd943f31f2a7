"""What every page shares: the workspace, one registry handle per process, pagination, empty states."""

from __future__ import annotations

import streamlit as st
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from components.config import Settings
from components.dashboard import PageWindow, window
from components.dashboard.first_steps import FIRST_STEPS
from components.dashboard.pagination import PAGE_SIZES
from components.registry import Registry, RegistryError
from components.workspace import Workspace

DATASET_KEY = "dataset"


@st.cache_resource(show_spinner=False)
def _registry(_ws: Workspace, url: str) -> Registry:
    """One registry handle per process and registry URL (Streamlit keys the cache on ``url`` only)."""
    return _ws.registry()


def workspace() -> Workspace:
    """The workspace of this app (``ECGOPS_*`` environment of the server)."""
    return Workspace(Settings())  # the ECGOPS_* environment as it is now, not a cached copy


def registry_or_stop(ws: Workspace) -> Registry:
    """The registry of the workspace; on a workspace without one, say what to run first and stop the page."""
    if not ws.registry_exists():
        st.info(FIRST_STEPS["workspace"], icon=":material/rocket_launch:")
        st.stop()
    try:
        return _registry(ws, ws.registry_url)
    except (RegistryError, SQLAlchemyError) as exc:
        url = make_url(ws.registry_url).render_as_string(hide_password=True)
        st.error(f"cannot open the registry at {url}: {str(exc).splitlines()[0]}")
        st.stop()


def first_steps(page: str) -> None:
    """Tell the user what to run so that this page has something to show."""
    st.info(FIRST_STEPS[page], icon=":material/rocket_launch:")


def current_dataset() -> str | None:
    """The dataset chosen in the sidebar (None when the workspace has none yet)."""
    value = st.session_state.get(DATASET_KEY)
    return str(value) if value else None


def paginate(total: int, key: str, *, default_size: int = PAGE_SIZES[0]) -> PageWindow:
    """A page-size choice and page buttons under a listing of ``total`` rows; returns the chosen window."""
    left, right = st.columns([1, 4], vertical_alignment="center")
    size = left.selectbox(
        "rows per page", PAGE_SIZES, index=PAGE_SIZES.index(default_size), key=f"{key}-size"
    )
    n_pages = window(total, 1, size).n_pages
    with right:
        page = st.pagination(n_pages, key=f"{key}-page") if n_pages > 1 else 1
    win = window(total, page, size)
    st.caption(win.label)
    return win
