"""Errors of the evaluation stage (importable without torch)."""

from components.errors import UserError


class EvaluationError(UserError, RuntimeError):
    """The evaluation cannot run as asked (not a task model, no test records, unknown cohort, ...)."""
