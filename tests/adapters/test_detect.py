"""Which channel a mail belongs to: by the original sender, then by content; forwards see through."""

from __future__ import annotations

import pytest

from leadrelay.adapters.detect import detect_channel
from leadrelay.adapters.from_email import sender_matches
from tests.adapters.support import routing
from tests.partners import Case, partner_cases, sample

MAILS = [c for c in partner_cases() if c.kind == "email" and c.lead]


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
