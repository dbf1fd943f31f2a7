"""Errors of the evaluation stage (importable without torch, for the CLI's list of user errors)."""


class EvaluationError(RuntimeError):
    """The evaluation cannot run as asked (not a task model, no test records, unknown cohort, ...)."""
