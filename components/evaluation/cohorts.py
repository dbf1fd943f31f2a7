"""Subgroup attributes of evaluated records: sex, age band, site and device from the manifest."""

from __future__ import annotations

import numpy as np
import pandas as pd

UNKNOWN = "unknown"
ATTRIBUTES = ("sex", "age", "site", "device")


def age_band(age: float | None, edges: list[float]) -> str:
    """``<40``, ``40-59``, ``60-79``, ``80+`` for edges ``[40, 60, 80]``; ``unknown`` without an age."""
    if age is None or not np.isfinite(age):
        return UNKNOWN
    lower = None
    for edge in edges:
        if age < edge:
            return f"<{edge:g}" if lower is None else f"{lower:g}-{edge - 1:g}"
        lower = edge
    return f"{lower:g}+"


def _text(values: pd.Series) -> pd.Series:
    return values.map(lambda v: UNKNOWN if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))


def record_attributes(manifest: pd.DataFrame, age_edges: list[float]) -> pd.DataFrame:
    """One row per manifest row: ``sex``, ``age`` (band), ``site`` (``source/site`` when the records come
    from several sources, since site names are only unique within a source) and ``device``."""
    site = _text(manifest["site"])
    if manifest["source"].nunique() > 1:
        site = manifest["source"].astype(str) + "/" + site
    ages = pd.to_numeric(manifest["age"], errors="coerce").to_numpy(dtype=float)
    return pd.DataFrame(
        {
            "sex": _text(manifest["sex"]).to_numpy(),
            "age": [age_band(a, age_edges) for a in ages],
            "site": site.to_numpy(),
            "device": _text(manifest["device"]).to_numpy(),
        }
    )


def group_order(attribute: str, group: str) -> tuple[float, str]:
    """Sort key of a subgroup: age bands by age (``<40`` … ``80+``), everything else by name."""
    if attribute == "age" and group != UNKNOWN:
        if group.startswith("<"):
            return float(group[1:]) - 1e6, group
        return float(group.rstrip("+").split("-")[0]), group
    return 0.0, group
