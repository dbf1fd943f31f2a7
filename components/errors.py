"""The root of the errors that are the user's to fix.

``ecgops`` prints a :class:`UserError` as one red line and exits with status 2, without a traceback; any
other exception is a bug and keeps its traceback. Each component's error class derives from it (and from
the builtin it always was, so ``except ValueError`` keeps working).
"""

from __future__ import annotations


class UserError(Exception):
    """What the person running ecgops can fix: an input, a parameter, a reference, the workspace's state
    or a service it needs. The message says what is wrong and where."""
