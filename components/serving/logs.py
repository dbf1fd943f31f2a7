"""BentoML's per-request access log, written by a background thread instead of the event loop.

Each access-log line costs the event loop a formatted record and a flushed write to stdout: 5-12 % of
the served throughput in ``benchmarks/serving.py``. Records keep their request
context (trace and request ids are filled in by BentoML's filters on the request's own thread, where
that context lives) and are formatted and written by a :class:`~logging.handlers.QueueListener`.
"""

from __future__ import annotations

import logging
import queue
from logging.handlers import QueueHandler, QueueListener

ACCESS_LOGGER = "bentoml.access"
#: the logger whose handlers BentoML's server configuration sets up (the access logger propagates to it)
PARENT_LOGGER = "bentoml"


def access_log_in_background() -> QueueListener | None:
    """Move the access logger's output to a background thread; returns the running listener (stop it on
    shutdown to flush), or None when BentoML has configured no handler to move."""
    parent = logging.getLogger(PARENT_LOGGER)
    targets = [h for h in parent.handlers if isinstance(h, logging.StreamHandler)]
    if not targets:
        return None
    writers: list[logging.Handler] = []
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    enqueue = QueueHandler(records)
    for target in targets:
        for request_filter in target.filters:  # they read the request's context: run them here
            enqueue.addFilter(request_filter)
        writer = logging.StreamHandler(target.stream)
        writer.setFormatter(target.formatter)
        writer.setLevel(target.level)
        writers.append(writer)
    access = logging.getLogger(ACCESS_LOGGER)
    access.addHandler(enqueue)
    access.propagate = False
    listener = QueueListener(records, *writers, respect_handler_level=True)
    listener.start()
    return listener
