"""Errors of batch inference."""

from __future__ import annotations

from components.errors import UserError


class InferenceError(UserError, ValueError):
    """A batch prediction that cannot run as asked: an unknown model or stage, an unusable drop."""
