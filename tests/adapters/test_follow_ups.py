"""Follow-ups of an enquiry (updates, viewings, withdrawals) read by every portal and the configurable
adapter: their fixtures read as the follow-up their entry names, and never as a new lead."""

from __future__ import annotations

from typing import Any

import pytest

from leadrelay.adapters import NotALead, ParseError, RawItem
from leadrelay.adapters.events import FollowUp
from leadrelay.adapters.portal import PortalAdapter
from leadrelay.adapters.registry import ADAPTERS
from leadrelay.routing import load_routing
from leadrelay.routing.follow_ups import FollowUpKind
from leadrelay.testing.partners import Case, partner_cases
from tests.adapters.support import FIXTURES, at, context

FOLLOW_UPS = [c for c in partner_cases() if c.follow_up]
PORTALS = ("hubblehq", "liquidspace", "workthere", "kontor")
CONFIGURED = load_routing(FIXTURES / "configurable" / "routing.yaml")


def _read(case: Case) -> FollowUp:
    ctx, adapter = context(case.channel)
    assert isinstance(adapter, PortalAdapter)
    found = adapter.follow_up(case.item(), ctx)
    assert found is not None, case.key
    return found


def _mismatches(found: FollowUp, expected: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    got = found.to_json()
    return {path: (want, at(got, path)) for path, want in expected.items() if at(got, path) != want}


@pytest.mark.parametrize("case", FOLLOW_UPS, ids=lambda c: c.key)
def test_follow_up_fixture_reads_as_its_follow_up(case: Case) -> None:
    assert _mismatches(_read(case), case.expected["_follow_up"]) == {}


@pytest.mark.parametrize("case", FOLLOW_UPS, ids=lambda c: c.key)
def test_follow_up_is_never_read_as_a_new_lead(case: Case) -> None:
    ctx, adapter = context(case.channel)
    with pytest.raises(NotALead, match="follows up an enquiry"):
        adapter.parse(case.item(), ctx)


@pytest.mark.parametrize("channel", PORTALS)
def test_every_portal_has_each_follow_up_through_both_doors(channel: str) -> None:
    cases = [c for c in FOLLOW_UPS if c.channel == channel]
    assert {FollowUpKind(c.expected["_follow_up"]["kind"]) for c in cases} == set(FollowUpKind)
    assert {c.kind for c in cases} == {"webhook", "email"}


@pytest.mark.parametrize("channel", [c for c in ADAPTERS if c in PORTALS])
def test_a_lead_is_no_follow_up(channel: str) -> None:
    ctx, adapter = context(channel)
    assert isinstance(adapter, PortalAdapter)
    for case in partner_cases("samples"):
        if case.channel == channel:
            assert adapter.follow_up(case.item(), ctx) is None, case.key


def test_a_follow_up_that_names_no_enquiry_is_a_parse_error() -> None:
    ctx, adapter = context("hubblehq")
    assert isinstance(adapter, PortalAdapter)
    with pytest.raises(ParseError, match=r"hubblehq webhook: .*names no enquiry reference"):
        adapter.follow_up(RawItem("webhook", b'{"event": "viewing.cancelled", "enquiry": {}}'), ctx)


def test_configured_follow_up_events_and_subjects() -> None:
    ctx, adapter = context("spacepool", CONFIGURED)
    assert isinstance(adapter, PortalAdapter)
    body = b'{"action": "enquiry_changed", "enquiry": {"ref": "SP-204518", "workstations": 9}}'
    changed = adapter.follow_up(RawItem("webhook", body), ctx)
    assert changed is not None
    assert (changed.kind, changed.reference) == (FollowUpKind.updated, "SP-204518")
    assert changed.changes["requirements"]["desks"] == {"min": 9, "max": 9}
    mail = (
        b"From: SpacePool <alerts@notifications.spacepool.com>\r\nSubject: SpacePool enquiry withdrawn\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nThe enquirer withdrew enquiry SP-204518.\r\n"
    )
    withdrawn = adapter.follow_up(RawItem("email", mail), ctx)
    assert withdrawn is not None
    assert (withdrawn.kind, withdrawn.reference) == (FollowUpKind.withdrawn, "SP-204518")
    with pytest.raises(NotALead, match="follows up"):
        adapter.parse(RawItem("email", mail), ctx)
    # an event the file still ignores stays ignored, not a follow-up
    update = b'{"action": "enquiry_update", "enquiry": {"ref": "SP-204518"}}'
    assert adapter.follow_up(RawItem("webhook", update), ctx) is None


def test_a_follow_up_survives_the_ledger_as_json() -> None:
    found = _read(next(c for c in FOLLOW_UPS if c.channel == "hubblehq" and c.kind == "webhook"))
    assert FollowUp.from_json(found.to_json()) == found
