"""The report-encoder errors users see (kept free of heavy imports, so the CLI can name it cheaply)."""

from components.errors import UserError


class TextModelError(UserError, RuntimeError):
    """A report model that cannot be found, loaded or verified offline; the message says what to do."""


class NoTextSpaceError(UserError, ValueError):
    """Text was asked of a foundation model whose recipe learned no text space (no zero-shot, no report
    retrieval): the message names what was asked."""
