"""Errors of packaging, pulling and serving (importable without torch or BentoML, for the CLI)."""

from __future__ import annotations

from components.errors import UserError


class PackagingError(UserError, RuntimeError):
    """A model cannot be packaged or a Bento cannot be pulled as asked; the message says why."""


class PackagingRefusedError(PackagingError):
    """The model did not pass its gate (or has none) and packaging was not forced with a reason."""


class RequestError(ValueError):
    """A request the API cannot serve: ``status`` (4xx) and a message saying what is wrong."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
