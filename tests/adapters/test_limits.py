"""Size caps: mail over the message limit is not read; text is read up to its limits, from the start."""

from __future__ import annotations

import dataclasses

import pytest

from leadrelay.adapters import ParseError, RawItem
from leadrelay.adapters.base import Limits
from leadrelay.adapters.mail.message import MAX_PARTS, read_mail
from tests.adapters.support import context

SMALL = Limits(message_bytes=4096, part_text_bytes=1000, mail_text_bytes=1500)


def _mail(*parts: str) -> bytes:
    head = (
        "From: HubbleHQ <notifications@hubblehq.com>\r\nTo: leads@example.com\r\nSubject: New enquiry\r\n"
        "Message-ID: <limits@hubblehq.com>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
    )
    body = "".join(f"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{part}\r\n" for part in parts)
    return f"{head}{body}--b--\r\n".encode()


def test_a_message_over_the_limit_is_a_parse_error_that_names_its_size_and_the_limit() -> None:
    raw = _mail("Email: ann@example.com\r\nPhone: 07700 900123\r\n" + "Message: hello\r\n" * 400)
    ctx, adapter = context("hubblehq")
    assert adapter.parse(RawItem(kind="email", body=raw), ctx).contact.email == "ann@example.com"

    with pytest.raises(ParseError) as refused:
        adapter.parse(RawItem(kind="email", body=raw), dataclasses.replace(ctx, limits=SMALL))

    message = str(refused.value)
    assert f"{len(raw):,} bytes" in message and "4,096-byte limit" in message


def test_a_part_is_read_from_its_start_up_to_its_limit_without_splitting_a_character() -> None:
    text = "Name: Zoë\r\n" + "é" * 5000

    plain = read_mail(_mail(text), SMALL).plain

    assert text.replace("\r\n", "\n").startswith(plain)
    assert 990 <= len(plain.encode()) <= 1000


def test_all_parts_of_a_message_share_one_text_budget() -> None:
    first, second = "a" * 900, "b" * 900

    plain = read_mail(_mail(first, second), SMALL).plain

    assert plain == f"{first}\n{'b' * 600}"


def test_a_message_of_thousands_of_tiny_parts_is_not_parsed_past_its_headers() -> None:
    """The stdlib parses every part's headers at once (about 0.2 ms each): 25 MiB of them, minutes."""
    raw = _mail(*["Email: ann@example.com"] * 5000)
    ctx, adapter = context("hubblehq")

    mail = read_mail(raw)
    assert mail.unread == f"it has over {MAX_PARTS} MIME parts"
    assert mail.subject == "New enquiry" and mail.sender == "notifications@hubblehq.com"  # still routable
    with pytest.raises(ParseError, match=f"it has over {MAX_PARTS} MIME parts; its raw bytes are kept"):
        adapter.parse(RawItem(kind="email", body=raw), ctx)
    assert read_mail(_mail(*["Email: ann@example.com"] * MAX_PARTS)).unread == ""  # the limit itself reads
