"""Records longer than a task model's input: windows whose probabilities are aggregated per record.

Serving, batch inference and evaluation cut a long record into windows of the model's length
(:func:`components.io.canonical.split_windows`) and aggregate the windows' probabilities with the
``windows:`` parameters, so a 60-s record is read whole instead of cut to its first seconds.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class WindowParams(BaseModel):
    """The ``windows:`` section of params.yaml: how a long record's windows are aggregated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    aggregate: Literal["mean", "max"] = Field(
        default="mean",
        description="per-label probability of a record from its windows' probabilities: mean, or max (a "
        "finding seen in any window counts)",
    )
    max_windows: int = Field(
        default=60, ge=1, description="longest record accepted, in windows of the model's length"
    )


def aggregate(proba: np.ndarray, counts: np.ndarray, how: Literal["mean", "max"]) -> np.ndarray:
    """``(sum(counts), L)`` window probabilities, consecutive per record → ``(len(counts), L)``."""
    counts = np.asarray(counts, dtype=np.int64)
    if proba.shape[0] != counts.sum():
        raise ValueError(f"{proba.shape[0]} window rows for {counts.sum()} windows")
    if len(counts) == 0:
        return np.zeros((0, proba.shape[1]), dtype=proba.dtype)
    if (counts == 1).all():
        return proba
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    if how == "max":
        return np.maximum.reduceat(proba, starts, axis=0)
    return (np.add.reduceat(proba.astype(np.float64), starts, axis=0) / counts[:, None]).astype(proba.dtype)
