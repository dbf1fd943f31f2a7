"""The report-encoder error users see (kept free of heavy imports, so the CLI can name it cheaply)."""

from components.errors import UserError


class TextModelError(UserError, RuntimeError):
    """A report model that cannot be found, loaded or verified offline; the message says what to do."""
