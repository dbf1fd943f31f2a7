"""The access log is written by a background thread and keeps each request's context."""

from __future__ import annotations

import contextvars
import io
import logging
from collections.abc import Iterator

import pytest

from components.serving.logs import ACCESS_LOGGER, PARENT_LOGGER, access_log_in_background

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


class _RequestContext(logging.Filter):
    """Like BentoML's trace filter: reads the request's context into the record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


@pytest.fixture
def configured() -> Iterator[io.StringIO]:
    parent, access = logging.getLogger(PARENT_LOGGER), logging.getLogger(ACCESS_LOGGER)
    saved = (parent.handlers[:], parent.level, parent.propagate, access.handlers[:], access.propagate)
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(_RequestContext())
    handler.setFormatter(logging.Formatter("[%(request_id)s] %(message)s"))
    parent.handlers, parent.propagate = [handler], False
    parent.setLevel(logging.INFO)
    yield out
    parent.handlers, parent.level, parent.propagate = saved[0], saved[1], saved[2]
    access.handlers, access.propagate = saved[3], saved[4]


def test_access_lines_keep_their_request_context(configured: io.StringIO) -> None:
    listener = access_log_in_background()
    assert listener is not None
    for request in ("req-1", "req-2"):
        REQUEST_ID.set(request)
        logging.getLogger(ACCESS_LOGGER).info("POST /predict %s", 200)
    REQUEST_ID.set("later")
    listener.stop()
    assert configured.getvalue().splitlines() == ["[req-1] POST /predict 200", "[req-2] POST /predict 200"]


def test_nothing_is_moved_without_a_configured_handler() -> None:
    parent = logging.getLogger(PARENT_LOGGER)
    saved = parent.handlers[:]
    parent.handlers = []
    try:
        assert access_log_in_background() is None
    finally:
        parent.handlers = saved
