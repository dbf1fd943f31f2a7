"""Points in time as a person writes them: an ISO date or date-time, or a duration back from now."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_instant(text: str, now: datetime) -> datetime:
    """``2026-01-31``, ``2026-01-31T08:00`` (UTC unless a zone is given: ``…Z``, ``…+01:00``) or a
    duration before ``now`` (``30m``, ``12h``, ``7d``, ``2w``), as an aware datetime; ``ValueError``
    otherwise."""
    value = text.strip()
    match = DURATION.match(value)
    if match:
        return now - timedelta(**{UNITS[match.group(2)]: float(match.group(1))})
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{text!r} is neither an ISO date or date-time (2026-01-31, 2026-01-31T08:00Z) "
            "nor a duration (30m, 12h, 7d, 2w)"
        ) from None
    return instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant
