"""Errors of the prediction log (importable without pyarrow or fsspec)."""

from __future__ import annotations

from components.errors import UserError


class PredictionLogError(UserError, OSError):
    """The prediction log cannot be reached, written or read as asked; the message names its URL."""
