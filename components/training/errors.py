"""Errors of the pretraining stage (importable without torch, for the CLI's list of user errors)."""


class PretrainError(RuntimeError):
    """The pretrain stage cannot run as asked (e.g. nothing to resume)."""
