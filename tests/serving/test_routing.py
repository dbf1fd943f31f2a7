"""A family Bento routes a request to the member that needs only leads it carries and reads most of them."""

from __future__ import annotations

import pytest

from components.io.leads import STANDARD_LEADS
from components.serving.errors import RequestError
from components.serving.inputs import InputSpec
from components.serving.routing import route

LIMB = ("I", "II", "III", "aVR", "aVL", "aVF")


def _task(name: str, leads: tuple[str, ...]) -> InputSpec:
    return InputSpec(f"task {name}", 100, 1000, leads, leads)


FAMILY = [
    _task("superdiagnostic", tuple(STANDARD_LEADS)),
    _task("superdiagnostic-lead-i", ("I",)),
    _task("superdiagnostic-lead-ii", ("II",)),
    _task("superdiagnostic-limb", LIMB),
]


@pytest.mark.parametrize(
    ("present", "expected"),
    [
        (STANDARD_LEADS, 0),  # all twelve: the 12-lead base
        (("I",), 1),
        (("II", "V1"), 2),
        (("I", "II"), 1),  # one lead read either way: the first in the family
        (LIMB, 3),  # six limb leads beat one
        ((*LIMB, "V1", "V2"), 3),
        (("I", "II", "III", "aVR", "aVL"), 1),  # a limb lead short of the limb member
    ],
)
def test_the_member_reading_most_present_leads_answers(present: tuple[str, ...], expected: int) -> None:
    assert route(FAMILY, present) == expected


def test_no_fitting_member_is_a_400_listing_the_leads_and_what_each_member_needs() -> None:
    with pytest.raises(RequestError) as caught:
        route(FAMILY, ["V1", "V2"])
    message = caught.value.message
    assert caught.value.status == 400
    assert message.startswith("no model of this Bento reads the leads present ['V1', 'V2']: ")
    assert "task superdiagnostic-lead-i needs ['I']; task superdiagnostic-lead-ii needs ['II']" in message
    assert f"task superdiagnostic-limb needs {list(LIMB)}" in message


def test_a_single_model_always_answers_and_says_itself_what_is_missing() -> None:
    assert route(FAMILY[1:2], ["V1"]) == 0
    assert route(FAMILY[:1], ["I"]) == 0
