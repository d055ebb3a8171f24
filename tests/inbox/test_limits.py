"""Mail over the size limit, against a real Dovecot: fetched only in part, kept, dead-lettered, passed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from unittest.mock import patch

import pytest

from leadrelay.models import LeadState
from leadrelay.runtime import Runtime
from leadrelay.testing.dovecot import Dovecot, received
from leadrelay.testing.mails import enquiries, sample
from leadrelay.worker.imap import poll as poll_module
from tests.conftest import make_settings
from tests.helpers import dead_letters
from tests.inbox.conftest import inbox_routing
from tests.inbox.support import inbox, mail_leads, poll, watermark

LIMIT = 64 * 1024


def _huge_enquiry(size: int) -> bytes:
    head = (
        b"From: HubbleHQ <notifications@hubblehq.com>\r\nTo: leads@example.com\r\n"
        b"Subject: New enquiry\r\nMessage-ID: <huge-1@hubblehq.com>\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nEmail: someone@example.com\r\n"
    )
    line = b"Message: " + b"x" * 60 + b"\r\n"
    return head + line * ((size - len(head)) // len(line) + 1)


@pytest.fixture
def small_limit_runtime(clean_db: str, dovecot: Dovecot, folders) -> Iterator[tuple[Runtime, str, bytes]]:
    huge = received(_huge_enquiry(3 * LIMIT))  # as the mail server files it
    folder = folders(huge, sample("hubblehq", "email-viewing-request.eml"))
    rt = Runtime.load(
        make_settings(database_url=clean_db, max_message_bytes=LIMIT),
        inbox_routing({"leads": inbox(dovecot, folder)}),
    )
    yield rt, folder, huge
    rt.close()


def test_a_message_over_the_limit_is_kept_in_part_as_a_dead_letter_and_the_inbox_moves_on(
    dovecot: Dovecot, small_limit_runtime: tuple[Runtime, str, bytes]
) -> None:
    rt, folder, huge = small_limit_runtime

    report = poll(rt, read=False)  # the door alone: no worker has read the stored mail yet

    assert report.ok, report.error
    assert (report.new, report.failed, report.marked) == (1, 1, 2)
    big, normal = sorted(mail_leads(rt), key=lambda row: row.raw_meta["uid"])
    assert normal.state == LeadState.received and normal.raw_meta["uid"] == 2
    # only the beginning was fetched: one byte more than any reader accepts
    assert len(big.raw_body) == LIMIT + 1 and huge.startswith(big.raw_body)
    assert (big.raw_meta["size"], big.raw_meta["truncated"]) == (len(huge), True)
    assert big.state == LeadState.dead and big.channel == "hubblehq"  # routed by its headers
    [letter] = dead_letters(rt, big.id)
    assert letter.reason == "parse_error"
    assert f"{len(huge):,} bytes" in letter.message and f"{LIMIT:,}-byte limit" in letter.message
    assert dovecot.message_ids(folder, seen=False) == set()
    assert watermark(rt).last_uid == 2

    again = poll(rt)
    assert (again.new, again.failed, again.duplicate, again.marked) == (0, 0, 0, 0)
    assert len(mail_leads(rt)) == 2


def test_a_batch_is_cut_where_its_bytes_pass_the_limit_and_nothing_is_lost(
    clean_db: str, dovecot: Dovecot, folders
) -> None:
    mails = [mail.raw for mail in enquiries(9)]
    folder = folders(*mails)
    most = 2 * max(len(received(raw)) for raw in mails) + 10  # two or three mails a part, never all nine
    rt = Runtime.load(
        make_settings(database_url=clean_db, max_batch_bytes=most),
        inbox_routing({"leads": inbox(dovecot, folder, batch_size=50)}),
    )
    stored: list[int] = []
    real = poll_module.store_messages

    def counting(session: Any, found: Any, **kwargs: Any) -> Any:
        stored.append(sum(len(raw) for raw, _, _ in found))
        return real(session, found, **kwargs)

    try:
        with patch.object(poll_module, "store_messages", counting):
            report = poll(rt, read=False)
        assert report.ok, report.error
        assert (report.new, report.marked) == (9, 9)
        assert len(stored) >= 3 and max(stored) <= most  # one batch of 50 UIDs, cut by its bytes
        assert watermark(rt).last_uid == 9
        assert dovecot.message_ids(folder, seen=False) == set()
        assert len(mail_leads(rt)) == 9
    finally:
        rt.close()


def test_one_message_bigger_than_the_batch_limit_is_a_batch_of_its_own(
    clean_db: str, dovecot: Dovecot, folders
) -> None:
    small, big = (mail.raw for mail in enquiries(2))
    folder = folders(small, big + b"\r\n" + b"x" * 4000)
    rt = Runtime.load(
        make_settings(database_url=clean_db, max_batch_bytes=len(received(small)) + 100),
        inbox_routing({"leads": inbox(dovecot, folder)}),
    )
    try:
        report = poll(rt, read=False)
        assert report.ok, report.error
        assert (report.new, report.marked) == (2, 2)
        assert watermark(rt).last_uid == 2
    finally:
        rt.close()
