"""The group of each record for In-Distribution Batches (CAPE): a configurable key of manifest columns."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

#: the key of today's In-Distribution Batches: one group per ``source/site``
SITE_KEY: tuple[str, ...] = ("source", "site")
UNKNOWN = "unknown"


def record_groups(manifest: pd.DataFrame, key: Sequence[str] = SITE_KEY) -> np.ndarray:
    """The group of every manifest row: its ``key`` columns' values joined by ``/``.

    Missing (null or empty) values read ``"unknown"``, so records without a site or device form a group of
    their own instead of being dropped. ``key=("source", "site")`` gives ``ptbxl/<site>``;
    ``key=("device",)`` groups by recording device.
    """
    if isinstance(key, str) or not key:
        raise ValueError(f"the group key is a non-empty list of manifest columns, not {key!r}")
    unknown = [column for column in key if column not in manifest.columns]
    if unknown:
        raise ValueError(
            f"no manifest column {', '.join(map(repr, unknown))} to group records by; "
            f"the manifest has: {', '.join(map(str, manifest.columns))}"
        )
    parts = [_values(manifest[column]) for column in key]
    joined = parts[0]
    for part in parts[1:]:
        joined = joined + "/" + part
    return joined.to_numpy(dtype=object)


def _values(column: pd.Series) -> pd.Series:
    text = column.astype(object).where(column.notna(), UNKNOWN).astype(str).str.strip()
    return text.where(text != "", UNKNOWN)
