"""Errors of tasks, label mappings and gate policies (importable without torch, for the CLI's list of
user errors)."""


class TaskError(ValueError):
    """A task, label mapping or gate policy file is missing or invalid; the message says what and where."""
