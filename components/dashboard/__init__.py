"""The dashboard's data layer: what the Streamlit pages in ``dashboards/`` show, read through ``components``.

Modules: ``first_steps`` (what an empty page tells a newcomer), ``pagination``, ``quality`` (validation
runs, expectation trend, quarantine, 12-lead plots), ``datasets`` (versions, label distribution and its
shift), ``models`` (registry table, metric history, gates, lineage graph, report links), ``deployments``
(Bentos per task and stage, audit log), ``monitoring`` (monitoring runs per feature group, alarms, shadow
reports, the prediction log's volume and skipped parts), ``charts`` (Vega-Lite specs via Altair), ``launch``
(``ecgops dashboard``). Nothing here imports Streamlit, and nothing here writes SQL: reads go through the
registry API.
"""

from components.dashboard.pagination import PageWindow, window

__all__ = ["PageWindow", "window"]
