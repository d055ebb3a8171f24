"""Issue 19, replies and junk through the real poll path (Dovecot → intake → worker →
sandbox): a reply to a delivered notification is a duplicate of it, never a second
opportunity; an out-of-office reply and bounces are ignored, never dead letters."""

from __future__ import annotations

from typing import Any

from leadrelay.models import LeadState
from leadrelay.testing import partners
from leadrelay.testing.dovecot import Dovecot
from leadrelay.testing.mails import sample
from leadrelay.worker.pipeline import process
from tests.helpers import dead_letters
from tests.inbox.support import Enqueued, inbox, mail_leads, poll


def _variation(channel: str, name: str) -> bytes:
    return (partners.PARTNERS / channel / "fixtures" / "variations" / name).read_bytes()


REPLY = ("hubblehq", "email-reply-gmail-on-wrote.eml")  # staff answer the viewing request, quoting it
BARE_QUOTE = ("hubblehq", "email-reply-bare-quote.eml")  # staff answer, quoting two lines, no attribution
JUNK = {
    ("hubblehq", "notalead-out-of-office.eml"): "an automatic reply",
    ("kontor", "notalead-bounce-dsn.eml"): "a delivery status notification",
    ("liquidspace", "notalead-undeliverable-exchange.eml"): "a delivery status notification",
    ("kontor", "notalead-abwesenheitsnotiz.eml"): "an automatic reply",
}


def _settle(rt: Any, enqueued: Enqueued) -> dict[int, str]:
    return {lead_id: process(rt, lead_id, owner="test") for lead_id in enqueued}


def test_a_reply_to_a_delivered_notification_is_a_duplicate_and_junk_is_ignored(
    dovecot: Dovecot, folders, make_runtime, sandbox
) -> None:
    folder = folders(sample("hubblehq", "email-viewing-request.eml"))
    rt = make_runtime({"leads": inbox(dovecot, folder)}, sandbox=sandbox)
    first = Enqueued()
    assert poll(rt, enqueue=first).new == 1
    assert list(_settle(rt, first).values()) == ["delivered"]
    [opportunity] = sandbox.opportunities()

    dovecot.deliver(folder, _variation(*REPLY))
    dovecot.deliver(folder, _variation(*BARE_QUOTE))
    for key in JUNK:
        dovecot.deliver(folder, _variation(*key))
    later = Enqueued()
    report = poll(rt, enqueue=later)
    assert report.ok, report.error
    assert (report.new, report.failed) == (2 + len(JUNK) - report.ignored, 0)
    outcomes = _settle(rt, later)

    rows = mail_leads(rt)
    original, reply, bare_quote, *junk = rows
    assert len(junk) == len(JUNK)
    assert original.state == LeadState.delivered
    for row in (reply, bare_quote):  # both read as the quoted lead, and known as its repeat
        assert row.state == LeadState.duplicate, row.note
        assert outcomes[row.id] == "duplicate"
    for row, reason in zip(junk, JUNK.values(), strict=True):
        assert row.state == LeadState.ignored, (row.channel, row.note)
        assert row.note and reason in row.note
    assert dead_letters(rt) == []
    assert sandbox.opportunities() == [opportunity]  # no second opportunity, nothing changed on it

    again = poll(rt)
    assert (again.new, again.duplicate, again.marked) == (0, 0, 0)


def test_a_reply_quoting_a_notification_from_an_unproven_sender_is_held(
    dovecot: Dovecot, folders, make_runtime, sandbox
) -> None:
    """A quoted notification is read as a lead, so a reply is no way around the sender check."""
    forged = _variation(*REPLY).replace(
        b"From: Jess Morgan <jess@foundry-workspace.example>", b"From: Someone <someone@stranger.example>", 1
    )
    assert b"someone@stranger.example" in forged
    rt = make_runtime({"leads": inbox(dovecot, folders(forged))}, sandbox=sandbox)
    enqueued = Enqueued()
    report = poll(rt, enqueue=enqueued)
    assert (report.new, report.failed, report.ignored) == (0, 1, 0)
    [row] = mail_leads(rt)
    assert enqueued == [row.id]  # stored raw for a worker, whose sender check holds it before any reading
    assert row.state == LeadState.dead
    [letter] = dead_letters(rt, row.id)
    assert letter.reason == "unverified_sender"
    assert sandbox.opportunities() == []
