"""Errors of fine-tuning (importable without torch)."""

from components.errors import UserError


class FinetuneError(UserError, RuntimeError):
    """The finetune stage cannot run as asked (no foundation model, too few labelled records, ...)."""
