"""Errors of the pretraining stage (importable without torch)."""

from components.errors import UserError


class PretrainError(UserError, RuntimeError):
    """The pretrain stage cannot run as asked (e.g. nothing to resume)."""
