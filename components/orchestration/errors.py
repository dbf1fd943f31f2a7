"""Why a retraining run stopped on purpose."""

from __future__ import annotations


class ValidationBlocked(RuntimeError):
    """A block-severity expectation failed: the dataset must not be versioned or trained on."""
