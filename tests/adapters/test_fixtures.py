"""Every partner's fixtures (``adapters/<channel>/fixtures``) normalise to their expected fields.

``samples/`` are copies of the shared samples — the portals' contract, which must
not drift from ``../shared/samples``; ``variations/`` are items the adapters had
not seen: reworded, reordered, re-encoded, forwarded (DESIGN.md §3). ``_raises``
marks mail and events that are not leads. The accuracy over all the variations is
also reported as one figure (key fields right / key fields expected).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from leadrelay.adapters import NotALead, ParseError
from leadrelay.adapters.registry import ADAPTERS
from leadrelay.testing.partners import (
    PARTNERS,
    SHARED_SAMPLES,
    Case,
    expected_entries,
    items,
    partner_cases,
    partner_folders,
    sample,
)
from tests.adapters.support import mismatches, parse, parse_several

CASES = partner_cases()
LEADS = [c for c in CASES if c.lead]
NOT_LEADS = [c for c in CASES if not c.lead and not c.several and not c.follow_up]
SEVERAL = [c for c in CASES if c.several]
SAMPLES = [c for c in CASES if c.group == "samples"]
ERRORS = {"NotALead": NotALead, "ParseError": ParseError}
GROUPS = {"samples", "variations"}
MIN_VARIATIONS = 5
TARGET_ACCURACY = 0.95


@pytest.mark.parametrize("case", LEADS, ids=lambda c: c.key)
def test_fixture_normalises_to_expected_fields(case: Case) -> None:
    assert mismatches(parse(case), case.expected) == {}


@pytest.mark.parametrize("case", NOT_LEADS, ids=lambda c: c.key)
def test_fixture_that_is_not_a_lead_is_refused_with_a_reason(case: Case) -> None:
    with pytest.raises(ERRORS[case.expected["_raises"]]) as caught:
        parse(case)
    assert str(caught.value).startswith(f"{case.channel} ")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("case", SEVERAL, ids=lambda c: c.key)
def test_fixture_that_holds_several_leads_splits_into_them(case: Case) -> None:
    """A digest or a mail with a table of leads: ``_leads`` lists each lead's fields, in order."""
    found = parse_several(case)
    assert len(found) == len(case.leads)
    for lead, expected in zip(found, case.leads, strict=True):
        if "_raises" in expected:
            assert isinstance(lead, ERRORS[expected["_raises"]]), lead
            assert "\n" not in str(lead)
        else:
            assert not isinstance(lead, Exception), lead
            assert mismatches(lead, expected) == {}


def test_every_registered_adapter_has_a_folder_of_fixtures() -> None:
    assert {root.parent.name for root in partner_folders()} == set(ADAPTERS)


@pytest.mark.parametrize("root", partner_folders(), ids=lambda p: p.parent.name)
def test_expected_json_lists_exactly_the_fixtures_beside_it(root: Path) -> None:
    found = {p.relative_to(root).as_posix() for p in items(root)}
    assert set(expected_entries(root)) == found
    assert {name.split("/")[0] for name in found} <= GROUPS


def test_portal_channels_have_a_webhook_and_an_email_sample() -> None:
    doors: dict[str, set[str]] = defaultdict(set)
    for case in SAMPLES:
        doors[case.channel].add(case.kind)
    assert set(doors) == set(ADAPTERS)
    for channel in set(ADAPTERS) - {"canonical"}:
        assert doors[channel] == {"webhook", "email"}, channel


def test_every_portal_has_enough_variations() -> None:
    for channel in set(ADAPTERS) - {"canonical"}:
        count = sum(c.channel == channel and c.group == "variations" for c in LEADS)
        assert count >= MIN_VARIATIONS, channel


def test_webhook_and_email_about_one_enquiry_share_the_portal_reference() -> None:
    references: dict[str, set[str | None]] = defaultdict(set)
    for case in SAMPLES:
        references[case.expected["external_id"]].add(parse(case).external_id)
    for reference in ("enq_8F2KQ7XW", "enq_3JD90PLA", "771245", "WT-2026-004417", "ktr_5c9e21"):
        assert references[reference] == {reference}


def _right_fields(case: Case) -> int:
    try:
        return len(case.expected) - len(mismatches(parse(case), case.expected))
    except (ParseError, NotALead):
        return 0


def _right_fields_of_several(case: Case) -> int:
    leads = parse_several(case)
    return sum(
        len(want) - len(mismatches(got, want))
        for got, want in zip(leads, case.leads, strict=False)
        if "_raises" not in want and not isinstance(got, Exception)
    )


def test_key_field_accuracy_over_all_variations(capsys: pytest.CaptureFixture[str]) -> None:
    variations = [c for c in LEADS if c.group == "variations"]
    several = [c for c in SEVERAL if c.group == "variations"]
    expected = sum(len(c.expected) for c in variations)
    expected += sum(len(want) for c in several for want in c.leads if "_raises" not in want)
    right = sum(_right_fields(c) for c in variations) + sum(_right_fields_of_several(c) for c in several)
    with capsys.disabled():
        print(f"\nvariation key-field accuracy: {right}/{expected} = {right / expected:.1%}")
    assert right / expected >= TARGET_ACCURACY


@pytest.mark.skipif(not SHARED_SAMPLES.is_dir(), reason="no ../shared beside the repo (a clean clone)")
def test_partner_samples_are_the_shared_samples_unchanged() -> None:
    """Both ways: every shared sample has an identical copy, every copy an unchanged original."""
    stale: list[str] = []
    shared = {p.relative_to(SHARED_SAMPLES).as_posix() for p in items(SHARED_SAMPLES)}
    copies = {f"{c.channel}/{c.path.name}" for c in SAMPLES}
    stale += sorted(f"{name} (no copy)" for name in shared - copies)
    stale += sorted(f"{name} (not shared)" for name in copies - shared)
    for name in sorted(shared & copies):
        channel, file = name.split("/", 1)
        if (SHARED_SAMPLES / name).read_bytes() != sample(channel, file).read_bytes():
            stale.append(f"{name} (differs)")
    contract = json.loads((SHARED_SAMPLES / "expected.json").read_text("utf-8"))
    for name, fields in contract.items():
        if name.startswith("_"):
            continue
        channel, _, file = name.partition("/")
        ours = expected_entries(PARTNERS / channel / "fixtures").get(f"samples/{file}")
        if ours != fields:
            stale.append(f"{name} (expected fields differ)")
    assert stale == [], "adapters/<channel>/fixtures/samples differ from ../shared/samples: copy them again"
