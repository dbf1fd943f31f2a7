"""Errors of tasks and fine-tuning (importable without torch, for the CLI's list of user errors)."""


class TaskError(ValueError):
    """A task, label mapping or gate policy file is missing or invalid; the message says what and where."""


class FinetuneError(RuntimeError):
    """The finetune stage cannot run as asked (no foundation model, too few labelled records, ...)."""
