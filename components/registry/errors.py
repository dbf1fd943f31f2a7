"""Typed registry errors. The CLI prints their message and exits with code 2."""

from __future__ import annotations

from components.errors import UserError


class RegistryError(UserError):
    """Base class of every error the registry raises on purpose."""


class NotFoundError(RegistryError, LookupError):
    """A dataset version, model, Bento or run that does not exist."""


class AmbiguousReferenceError(RegistryError, LookupError):
    """A prefix or name that matches more than one thing."""


class InvalidArgumentError(RegistryError, ValueError):
    """A value the registry will not store (unknown verdict, bad hash, ...)."""


class PromotionRefusedError(RegistryError):
    """A stage change the rules forbid (failed gate without ``--force --reason``, ...)."""


class StageChangedError(PromotionRefusedError):
    """A promotion that expected the model in one stage found it in another (someone moved it meanwhile):
    nothing was changed. ``stage`` is the stage the model is in."""

    def __init__(self, message: str, stage: str) -> None:
        self.stage = stage
        super().__init__(message)


class ConstraintViolationError(RegistryError):
    """The database refused a write because it would break one of its constraints."""


class ArtifactMismatchError(RegistryError):
    """An artifact whose sha256 is not the one recorded in the registry."""

    def __init__(self, what: str, path: str, expected: str, actual: str) -> None:
        self.path = path
        self.expected = expected
        self.actual = actual
        super().__init__(f"{what}: artifact {path} has sha256 {actual}, but the registry recorded {expected}")


class SchemaVersionError(RegistryError):
    """The database schema is not the one this code expects."""


class RegistryUnavailableError(RegistryError):
    """The registry database dropped or refused the connection (a restart, a terminated session) and did
    not come back within the retry window, or dropped it inside an ``atomic()`` block, whose enclosed
    calls cannot be replayed: the transaction was rolled back and nothing of it was recorded."""
