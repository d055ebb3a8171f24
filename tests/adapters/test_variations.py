"""Unseen variations of each portal's items: reworded, reordered, re-encoded, forwarded.

The fixtures under tests/fixtures/variations/<channel>/ were written from what
real notifications vary in (DESIGN.md §3), each with its own expected fields;
``_raises`` marks mail and events that are not leads. The accuracy over all of
them is also reported as one figure (key fields right / key fields expected).
"""

from __future__ import annotations

import pytest

from leadrelay.adapters import NotALead, ParseError
from leadrelay.adapters.registry import ADAPTERS
from tests.adapters.support import VARIATIONS, Case, cases, mismatches, parse

VARIATION_CASES = cases(VARIATIONS)
LEADS = [c for c in VARIATION_CASES if "_raises" not in c.expected]
NOT_LEADS = [c for c in VARIATION_CASES if "_raises" in c.expected]
ERRORS = {"NotALead": NotALead, "ParseError": ParseError}
MIN_PER_CHANNEL = 5
TARGET_ACCURACY = 0.95


@pytest.mark.parametrize("case", LEADS, ids=lambda c: c.key)
def test_variation_normalises_to_expected_fields(case: Case) -> None:
    assert mismatches(parse(case), case.expected) == {}


@pytest.mark.parametrize("case", NOT_LEADS, ids=lambda c: c.key)
def test_non_lead_variation_is_refused_with_a_reason(case: Case) -> None:
    with pytest.raises(ERRORS[case.expected["_raises"]]) as caught:
        parse(case)
    assert str(caught.value).startswith(f"{case.channel} ")
    assert "\n" not in str(caught.value)


def test_every_portal_has_enough_variations() -> None:
    for channel in set(ADAPTERS) - {"canonical"}:
        assert sum(c.channel == channel for c in LEADS) >= MIN_PER_CHANNEL, channel


def _right_fields(case: Case) -> int:
    try:
        return len(case.expected) - len(mismatches(parse(case), case.expected))
    except (ParseError, NotALead):
        return 0


def test_key_field_accuracy_over_all_variations(capsys: pytest.CaptureFixture[str]) -> None:
    expected = sum(len(c.expected) for c in LEADS)
    right = sum(_right_fields(c) for c in LEADS)
    with capsys.disabled():
        print(f"\nvariation key-field accuracy: {right}/{expected} = {right / expected:.1%}")
    assert right / expected >= TARGET_ACCURACY
