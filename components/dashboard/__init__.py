"""The dashboard's data layer: what the Streamlit pages in ``dashboards/`` show, read through ``components``.

Modules: ``workspace`` (settings, registry presence, datasets), ``pagination``, ``quality`` (validation
runs, expectation trend, quarantine, 12-lead plots), ``datasets`` (versions, label distribution and its
shift), ``models`` (registry table, metric history, gates, lineage graph, report links), ``deployments``
(Bentos per task and stage, audit log), ``charts`` (Vega-Lite specs via Altair), ``launch`` (``ecgops
dashboard``). Nothing here imports Streamlit, and nothing here writes SQL: reads go through the registry API.
"""

from components.dashboard.pagination import PageWindow, window
from components.dashboard.workspace import Workspace

__all__ = ["PageWindow", "Workspace", "window"]
