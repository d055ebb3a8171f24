"""Issue 4, done when: 500 messages appended to a Dovecot mailbox end as exactly the
right set of leads in Nexudus, and a second poll adds nothing."""

from __future__ import annotations

import os
import random
import time

from leadrelay.testing.dovecot import Dovecot
from leadrelay.testing.mails import enquiries, templates, unrouted, vary
from tests.inbox.support import Enqueued, inbox, mail_leads, poll
from tests.inbox.workers import process_all

DISTINCT, REPEATS, RESENT, NOT_LEADS, UNROUTED = 408, 40, 20, 24, 8


def test_500_messages_become_exactly_the_right_opportunities(
    dovecot: Dovecot, folders, make_runtime, sandbox
) -> None:
    rng = random.Random(4)
    distinct = enquiries(DISTINCT)
    repeats = [e.raw for e in rng.sample(distinct, REPEATS)]  # the very same message again
    resent = [  # the portal sends the notification again: another Message-ID, the same enquiry
        vary(e.raw, {}, message_id=f"<resent-{e.serial}@variants.leadrelay.test>", minutes=5)
        for e in rng.sample(distinct, RESENT)
    ]
    # mails that are no lead, to be ignored (a portal's follow-ups are not ignored: they merge into
    # their enquiry's opportunity, tests/delivery/test_follow_ups.py)
    not_leads = [t for t in templates() if not t.lead and not t.path.name.startswith("followup-")]
    others = [
        vary(
            t.raw(), {}, message_id=None if b"Message-ID" not in t.raw() else f"<other-{i}@x.test>", minutes=i
        )
        for i, t in ((i, not_leads[i % len(not_leads)]) for i in range(NOT_LEADS))
    ]
    strays = [unrouted(serial) for serial in range(UNROUTED)]
    mails = [e.raw for e in distinct] + repeats + resent + others + strays
    rng.shuffle(mails)
    assert len(mails) == 500

    folder = folders()
    with dovecot.client() as client:
        for n, raw in enumerate(mails):
            client.append(folder, raw, seen=n % 9 == 0)  # some were opened in a mail client first
    rt = make_runtime({"leads": inbox(dovecot, folder)}, sandbox=sandbox)
    enqueued = Enqueued()

    started = time.monotonic()
    report = poll(rt, enqueue=enqueued, read=False)  # the door alone: the workers below sort and read
    seconds = time.monotonic() - started
    print(f"\nimported 500 messages in {seconds:.2f}s: {500 / seconds:.0f} messages/s")

    assert report.ok, report.error
    assert (report.new, report.duplicate, report.failed) == (500 - REPEATS, REPEATS, 0)
    assert report.marked == 500
    assert len(mail_leads(rt)) == 500 - REPEATS
    assert sorted(enqueued) == sorted(row.id for row in mail_leads(rt))  # each stored mail, once

    outcomes = process_all(rt, enqueued, workers=max(2, min(4, os.cpu_count() or 2)))
    # the workers sort each mail, then read it: junk is ignored, mail no channel claims a dead letter
    assert outcomes == {
        "delivered": DISTINCT,
        "duplicate": RESENT,
        "ignored": NOT_LEADS,
        "dead": UNROUTED,
    }

    names = [opportunity["Name"] for opportunity in sandbox.opportunities()]
    assert len(names) == len(set(names)) == DISTINCT  # no duplicates
    assert set(names) == {e.opportunity for e in distinct}  # none missing, none extra

    again = poll(rt)
    assert (again.new, again.duplicate, again.marked) == (0, 0, 0)
    assert len(mail_leads(rt)) == 500 - REPEATS
    assert len(sandbox.opportunities()) == DISTINCT
