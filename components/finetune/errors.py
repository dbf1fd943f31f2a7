"""Errors of fine-tuning (importable without torch, for the CLI's list of user errors)."""


class FinetuneError(RuntimeError):
    """The finetune stage cannot run as asked (no foundation model, too few labelled records, ...)."""
