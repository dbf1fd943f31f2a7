"""Errors of tasks, label mappings and gate policies (importable without torch)."""

from components.errors import UserError


class TaskError(UserError, ValueError):
    """A task, label mapping or gate policy file is missing or invalid; the message says what and where."""
