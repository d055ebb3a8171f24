"""Which channel an item belongs to: a mail by the original sender, then by content (forwards see
through); a webhook by its shape."""

from __future__ import annotations

import pytest

from leadrelay.adapters import RawItem
from leadrelay.adapters.detect import detect, detect_channel, detect_webhook_channel
from leadrelay.adapters.from_email import sender_matches
from leadrelay.routing import load_routing
from leadrelay.testing.partners import Case, cases, partner_cases, sample
from tests.adapters.support import FIXTURES, routing

MAILS = [c for c in partner_cases() if c.kind == "email" and c.lead]
WEBHOOKS = [c for c in partner_cases() if c.kind == "webhook"]  # events that are not leads too
CONFIGURABLE = FIXTURES / "configurable"


@pytest.mark.parametrize("case", MAILS, ids=lambda c: c.key)
def test_each_portal_mail_is_recognised(case: Case) -> None:
    assert detect_channel(case.path.read_bytes(), routing().channels) == case.channel


def test_forwarded_mail_is_recognised_by_the_original_sender_not_the_forwarder() -> None:
    raw = sample("hubblehq", "email-forwarded-enquiry.eml").read_bytes()
    assert b"From: Jess Parker" in raw.split(b"\r\n\r\n")[0]
    assert detect_channel(raw, routing().channels) == "hubblehq"


def test_content_identifies_a_forward_that_lost_its_headers() -> None:
    raw = (
        b"From: Jess <jess@foundry.example>\r\nSubject: lead\r\n\r\n"
        b"Name: Ann\r\nEmail: ann@x.example\r\nRespond at https://liquidspace.com/host/tours/771245\r\n"
    )
    assert detect_channel(raw, routing().channels) == "liquidspace"


@pytest.mark.parametrize(
    "raw", [b"", b"\x00\xff garbage", b"From: someone@else.example\r\nSubject: hello\r\n\r\nlunch?\r\n"]
)
def test_unknown_or_unreadable_mail_has_no_channel(raw: bytes) -> None:
    assert detect_channel(raw, routing().channels) is None


@pytest.mark.parametrize("case", WEBHOOKS, ids=lambda c: c.key)
def test_each_portal_webhook_is_recognised_by_its_shape(case: Case) -> None:
    assert detect_webhook_channel(case.path.read_bytes(), routing().channels) == case.channel
    assert detect(case.item(), routing().channels) == case.channel


def test_a_configured_channel_is_recognised_by_the_paths_and_senders_its_parse_block_names() -> None:
    routes = load_routing(CONFIGURABLE / "routing.yaml")
    for case in cases(CONFIGURABLE):
        assert detect(case.item(), routes.channels) == case.channel, case.key


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{not json",
        b"[1, 2]",
        b'{"unrelated": {"shape": 1}}',
        b'{"event": "ping"}',  # an event type several portals send: no one shape wins
        b"[" * 100_000,
    ],
)
def test_a_webhook_no_single_channel_fits_has_no_channel(body: bytes) -> None:
    assert detect_webhook_channel(body, routing().channels) is None


def test_a_canonical_body_is_the_canonical_channel_even_when_small() -> None:
    body = b'{"contact": {"full_name": "Nobody", "email": "n@x.example"}, "requirements": {"desks": 4}}'
    assert detect(RawItem("webhook", body), routing().channels) == "canonical"


@pytest.mark.parametrize(
    ("address", "pattern", "matches"),
    [
        ("enquiries@hubblehq.com", "hubblehq.com", True),
        ("n@mail.hubblehq.com", "hubblehq.com", True),
        ("n@nothubblehq.com", "hubblehq.com", False),
        ("alerts@notifications.spacepool.com", "*@notifications.spacepool.com", True),
        ("leads@spacepool.co.uk", "leads@spacepool.co.uk", True),
        ("other@spacepool.co.uk", "leads@spacepool.co.uk", False),
    ],
)
def test_sender_patterns(address: str, pattern: str, matches: bool) -> None:
    assert sender_matches(address, pattern) is matches
