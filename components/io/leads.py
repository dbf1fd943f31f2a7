"""Map lead names as spelled in hospital exports onto the standard 12-lead order."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache

import yaml

from components.config import SCHEMAS_DIR

_SEPARATORS = re.compile(r"[\s\-_]+")
_PREFIX = re.compile(r"^(lead|ecg)")


@cache
def _vocabulary() -> tuple[tuple[str, ...], dict[str, str]]:
    spec = yaml.safe_load((SCHEMAS_DIR / "leads.yaml").read_text())
    standard = tuple(spec["standard"])
    alias_to_lead = {lead.lower(): lead for lead in standard}
    for lead, aliases in spec["aliases"].items():
        for alias in aliases:
            alias_to_lead[_normalise(alias)] = lead
    return standard, alias_to_lead


def _normalise(name: str) -> str:
    return _PREFIX.sub("", _SEPARATORS.sub("", name.strip().lower()))


STANDARD_LEADS: tuple[str, ...] = _vocabulary()[0]
N_LEADS = len(STANDARD_LEADS)


def standard_lead(name: str) -> str | None:
    """The standard lead a signal name denotes (``'avr'`` → ``'aVR'``), or None if it is not one.

    An inverted lead (``-aVR``, Cabrera display) is not the lead itself and maps to None.
    """
    if name.strip().startswith("-"):
        return None
    return _vocabulary()[1].get(_normalise(name))


@cache
def lead_positions(names: tuple[str, ...]) -> tuple[int | None, ...]:
    """Position in :data:`STANDARD_LEADS` of each name (None for non-lead channels)."""
    positions: list[int | None] = []
    for name in names:
        lead = standard_lead(name)
        positions.append(STANDARD_LEADS.index(lead) if lead else None)
    return tuple(positions)


def repeated_lead(names: Sequence[str]) -> str | None:
    """What is wrong when two channels denote the same standard lead (``"lead I is given twice ('I' and
    'i')"``), else None. Ingest quarantines such a record and serving refuses it: which channel is the
    lead cannot be told."""
    seen: dict[int, str] = {}
    for name, position in zip(names, lead_positions(tuple(names)), strict=True):
        if position is None:
            continue
        if position in seen:
            return f"lead {STANDARD_LEADS[position]} is given twice ({seen[position]!r} and {name!r})"
        seen[position] = name
    return None
