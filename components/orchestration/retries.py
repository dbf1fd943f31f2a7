"""Prefect retry options of the flows' I/O tasks, from the ``orchestration:`` section of params.yaml."""

from __future__ import annotations

from typing import Any


def io_retries() -> dict[str, Any]:
    """Prefect task options for I/O steps: retries with exponential backoff and some jitter."""
    from prefect.tasks import exponential_backoff

    from components.workspace import Workspace

    orchestration = Workspace.current().params.orchestration
    return {
        "retries": orchestration.io_retries,
        "retry_delay_seconds": exponential_backoff(backoff_factor=orchestration.retry_backoff_s),
        "retry_jitter_factor": orchestration.retry_jitter,
    }
