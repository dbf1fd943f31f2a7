"""Which task model of a family Bento answers a request, by the leads the request carries.

A family Bento serves a task and its lead-set variants (``ptbxl-superdiagnostic`` and ``-lead-i``, ...):
a request goes to the member whose needed leads it all carries and that reads the most of its leads;
ties go to the member first in the family (the base task first).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from components.io.leads import STANDARD_LEADS
from components.serving.errors import RequestError
from components.serving.inputs import InputSpec


def route(specs: Sequence[InputSpec], present: Collection[str]) -> int:
    """Index of the member (by its input spec, family order) that answers a request carrying the standard
    leads ``present``.

    A single member always answers (its own checks then say which lead is missing, as for any Bento);
    with several and none whose needed leads are all present, a :class:`RequestError` lists the leads
    present and what each member needs.
    """
    if len(specs) == 1:
        return 0
    have = set(present)
    fitting = [i for i, spec in enumerate(specs) if set(spec.needed_leads) <= have and have & set(spec.leads)]
    if not fitting:
        needs = "; ".join(f"{spec.what} needs {list(spec.needed_leads)}" for spec in specs)
        ordered = [lead for lead in STANDARD_LEADS if lead in have]
        raise RequestError(f"no model of this Bento reads the leads present {ordered}: {needs}")
    return max(fitting, key=lambda i: (len(have & set(specs[i].leads)), -i))
