"""What cannot be read is named by field path: in parse errors, in notes, in the form `dlq edit` opens."""

from __future__ import annotations

import pytest

from leadrelay.adapters import ParseError, RawItem
from leadrelay.adapters.base import ParseContext
from leadrelay.adapters.configurable import build
from leadrelay.adapters.portal import PortalAdapter
from leadrelay.routing import ChannelConfig, ParseConfig

CTX = ParseContext(channel="roomly", lead_source=20, default_region="GB")
LABELS = {"contact.email": ["Reply address"], "requirements.budget": ["Spend ceiling"]}
ADAPTER: PortalAdapter = build(
    "roomly", ChannelConfig(lead_source=20, adapter="configurable", parse=ParseConfig(labels=LABELS))
)


def mail(*lines: str) -> RawItem:
    head = "From: Roomly <alerts@roomly.example>\r\nSubject: New enquiry R-20931\r\n\r\n"
    return RawItem("email", (head + "\r\n".join(lines) + "\r\n").encode())


def test_a_mail_without_any_contact_names_both_fields_and_the_labels_looked_for() -> None:
    with pytest.raises(ParseError) as caught:
        ADAPTER.parse(mail("Enquirer: Ola Berg", "Spend ceiling: ask me", "Seats: 4"), CTX)
    message = str(caught.value)
    assert "contact.email: no e-mail address (looked for labels Reply address/" in message
    assert "and for any address in the text" in message
    assert "contact.phone: no phone number (looked for labels " in message
    assert "requirements.budget: 'ask me' (label 'Spend ceiling') is not an amount" in message
    assert "leadrelay dlq edit" in message


def test_an_unreadable_address_is_described_not_quoted() -> None:
    with pytest.raises(ParseError) as caught:
        ADAPTER.parse(mail("Enquirer: Ola Berg", "Reply address: ola at berg dot example"), CTX)
    assert "contact.email: the value of label 'Reply address' is not an e-mail address" in str(caught.value)
    assert "berg" not in str(caught.value)


def test_a_webhook_names_keys() -> None:
    with pytest.raises(
        ParseError, match=r"contact\.email: no e-mail address \(looked for keys Reply address/Email/E mail/"
    ):
        ADAPTER.parse(RawItem("webhook", b'{"name": "Ola Berg", "seats": 4}'), CTX)


def test_a_lead_read_anyway_carries_notes_for_what_was_left_out() -> None:
    parsed = ADAPTER.parse_noting(
        mail("Reply address: ola@berg.example", "Spend ceiling: ask me", "Seats: 4"), CTX
    )
    assert parsed.lead.contact.email == "ola@berg.example"
    assert parsed.unread == ("requirements.budget: 'ask me' (label 'Spend ceiling') is not an amount",)


def test_what_is_read_so_far_is_the_form_with_the_missing_field_empty() -> None:
    form = ADAPTER.read_so_far(mail("Enquirer: Ola Berg", "Seats: 4", "Ref: R-20931"), CTX)
    assert form is not None
    assert form["contact"]["email"] is None and form["contact"]["full_name"] == "Ola Berg"
    assert form["requirements"]["desks"] == {"min": 4, "max": 4}
    assert ADAPTER.read_so_far(RawItem("webhook", b"[1]"), CTX) is None
