"""Errors of tasks and fine-tuning (importable without torch)."""

from components.errors import UserError


class TaskError(UserError, ValueError):
    """A task, label mapping or gate policy file is missing or invalid; the message says what and where."""


class FinetuneError(UserError, RuntimeError):
    """The finetune stage cannot run as asked (no foundation model, too few labelled records, ...)."""
