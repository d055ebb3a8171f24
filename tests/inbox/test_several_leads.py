"""Issue 19, done when: a digest of 5 leads and a CSV of 50 rows, each polled twice from a
real Dovecot inbox, end as 5 and 50 opportunities — through the poller, the worker and the
Nexudus sandbox. Also: a digest with one unreadable block, a broker re-sending the same
CSV in a new mail, an XLSX, and a PDF kept with its lead."""

from __future__ import annotations

import copy
import os
from dataclasses import replace
from email import message_from_bytes
from email.policy import SMTP

from sqlalchemy import event, select

from leadrelay.db import transaction
from leadrelay.models import DeadLetter, DeadReason, Lead, LeadState
from leadrelay.statements import UNFLUSHED_CLAUSE
from leadrelay.testing import partners
from leadrelay.testing.dovecot import Dovecot, received
from leadrelay.testing.several import (
    BROKER_CHANNEL,
    broker_csv,
    broker_mail,
    broker_xlsx,
    hubble_digest,
    people,
)
from leadrelay.worker.dead_letters import replay
from leadrelay.worker.pipeline import process
from tests.inbox.support import Enqueued, inbox, mail_leads, poll
from tests.inbox.workers import process_all
from tests.test_cli import cli

CSV = "text/csv"
FLUSHED = "SET LOCAL synchronous_commit TO ON"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
WORKERS = max(2, min(4, os.cpu_count() or 2))


def _runtime(make_runtime, dovecot: Dovecot, folder: str, sandbox=None, *, header_row: int = 1):
    channel = copy.deepcopy(BROKER_CHANNEL)
    channel["parse"]["attachments"]["header_row"] = header_row
    return make_runtime({"leads": inbox(dovecot, folder)}, sandbox=sandbox, channels={"northbridge": channel})


def test_a_digest_of_5_and_a_csv_of_50_polled_twice_end_as_5_and_50_opportunities(
    dovecot: Dovecot, folders, make_runtime, sandbox
) -> None:
    digest_clients, table_clients = people(5), people(50, start=100)
    digest = received(hubble_digest(digest_clients, message_id="<digest-5@mail.hubblehq.com>"))
    table = received(
        broker_mail(
            [("leads.csv", CSV, broker_csv(table_clients))], message_id="<csv-50@northbridge.example>"
        )
    )
    folder = folders(digest, table)
    rt = _runtime(make_runtime, dovecot, folder, sandbox)

    enqueued = Enqueued()
    first = poll(rt, enqueue=enqueued)
    assert first.ok, first.error
    assert (first.new, first.duplicate, first.failed) == (2, 0, 0)
    assert len(enqueued) == 2  # the two mails, stored raw: the worker splits them
    assert len(first.parts) == 55  # into their leads

    with dovecot.client() as client:  # the same two mails again (a re-sync, a rule copying them back)
        client.append(folder, digest)
        client.append(folder, table)
    again = Enqueued()
    second = poll(rt, enqueue=again)
    assert (second.new, second.duplicate) == (0, 2)
    assert list(again) == []
    assert len(mail_leads(rt)) == 2 + 55  # the two mails and their leads, nothing twice

    outcomes = process_all(rt, first.parts, workers=WORKERS)
    assert outcomes == {"delivered": 55}

    opportunities = sandbox.opportunities()
    assert len(opportunities) == 55
    names = sorted(o["Name"] for o in opportunities)
    assert len(set(names)) == 55
    emails = {c["Email"].lower() for c in sandbox.coworkers()}
    assert {p.email for p in digest_clients + table_clients} <= emails

    with rt.sessions() as session:
        parts = session.execute(select(Lead.raw_meta).where(Lead.content_type != "message/rfc822")).scalars()
        rows = sorted(int(meta["part"].rsplit(" ", 1)[1]) for meta in parts)
        delivered = session.execute(
            select(Lead.channel, Lead.opportunity_id).where(Lead.state == LeadState.delivered)
        ).all()
    assert rows == list(range(2, 52))  # the header is row 1: the dead letter of a row names it so
    by_channel = {c: sum(1 for ch, _ in delivered if ch == c) for c in ("hubblehq", "northbridge")}
    assert by_channel == {"hubblehq": 5, "northbridge": 50}
    assert len({opportunity for _, opportunity in delivered}) == 55


def test_a_digest_with_an_unreadable_block_dead_letters_that_block_and_delivers_the_others(
    dovecot: Dovecot, folders, make_runtime, sandbox, clean_db: str
) -> None:
    digest = received(
        hubble_digest(people(3, start=300), message_id="<digest-3@mail.hubblehq.com>", without_contact=2)
    )
    rt = _runtime(make_runtime, dovecot, folders(digest), sandbox)
    polled = poll(rt)
    assert polled.new == 1
    assert process_all(rt, polled.parts, workers=2) == {"delivered": 2, "dead": 1}
    with rt.sessions() as session:
        dead = session.execute(select(Lead).where(Lead.state == LeadState.dead)).scalar_one()
        letter = session.execute(select(DeadLetter).where(DeadLetter.lead_id == dead.id)).scalar_one()
        assert dead.raw_meta["part"] == "lead 2 of 3"
        assert "e-mail (lead 2 of 3): the lead has neither an e-mail address" in letter.message
        assert "contact.email" in letter.message  # the field to fix with dlq edit
    assert len(sandbox.opportunities()) == 2
    env = {**os.environ, "LEADRELAY_DATABASE_URL": clean_db, "COLUMNS": "200"}
    shown = cli("dlq", "show", str(letter.id), env=env)
    assert shown.returncode == 0, shown.stderr
    assert f"lead 2 of 3 of the mail recorded as lead {dead.raw_meta['parent']}" in shown.stdout


def test_a_broker_resending_the_same_csv_in_a_new_mail_adds_nothing(
    dovecot: Dovecot, folders, make_runtime
) -> None:
    clients = people(6, start=400)
    first = broker_mail([("leads.csv", CSV, broker_csv(clients))], message_id="<csv-a@northbridge.example>")
    resent = broker_mail(
        [("leads (1).csv", CSV, broker_csv(clients[:4] + people(1, start=450)))],
        message_id="<csv-b@northbridge.example>",
    )
    rt = _runtime(make_runtime, dovecot, folders(received(first), received(resent)))
    report = poll(rt)
    assert (report.new, report.duplicate) == (2, 0)
    assert len(report.parts) == 6 + 1  # the four rows sent again are the same items
    with rt.sessions() as session:
        notes = session.execute(select(Lead.note).where(Lead.content_type == "message/rfc822")).scalars()
        assert any("4 already in the ledger" in (note or "") for note in notes)


def test_an_xlsx_of_leads_becomes_one_lead_per_row_and_a_bad_row_names_its_row_and_column(
    dovecot: Dovecot, folders, make_runtime, sandbox
) -> None:
    clients = people(4, start=500)
    broken = people(1, start=504)[0]
    clients.append(replace(broken, email="not an address", phone=""))
    mail = received(broker_mail([("leads.xlsx", XLSX, broker_xlsx(clients))], message_id="<xlsx@nb.example>"))
    rt = _runtime(make_runtime, dovecot, folders(mail), sandbox, header_row=2)  # a title above the header
    polled = poll(rt)
    assert polled.new == 1
    assert process_all(rt, polled.parts, workers=2) == {"delivered": 4, "dead": 1}
    with rt.sessions() as session:
        letter = session.execute(select(DeadLetter)).scalar_one()
    assert letter.message.endswith(
        "leads.xlsx row 7: column 'E-mail' (contact.email) does not hold an e-mail address"
    )
    assert "not an address" not in letter.message  # names the cell, never its content


def test_a_pdf_is_kept_with_the_lead_and_listed_in_its_raw_meta(
    dovecot: Dovecot, folders, make_runtime
) -> None:
    notification = partners.sample("hubblehq", "email-viewing-request.eml").read_bytes()
    msg = message_from_bytes(notification, policy=SMTP)
    msg.set_content(msg.get_content())
    msg.add_attachment(
        b"%PDF-1.4 floor plan", maintype="application", subtype="pdf", filename="floor-plan.pdf"
    )
    rt = _runtime(make_runtime, dovecot, folders(received(msg.as_bytes())))
    enqueued = Enqueued()
    assert poll(rt, enqueue=enqueued).new == 1
    (lead,) = mail_leads(rt)
    assert lead.raw_meta["attachments"] == [
        {"name": "floor-plan.pdf", "type": "application/pdf", "bytes": 19}
    ]
    assert list(enqueued) == [lead.id]  # one lead: the PDF is kept, not read


def test_a_digest_held_for_its_sender_and_replayed_is_split_by_the_worker(
    dovecot: Dovecot, folders, make_runtime, sandbox
) -> None:
    digest = received(hubble_digest(people(3, start=600), message_id="<held@x.example>"), authenticated=False)
    rt = _runtime(make_runtime, dovecot, folders(digest), sandbox)
    enqueued = Enqueued()
    assert poll(rt, enqueue=enqueued).failed == 1  # held by the worker's sender check: unverified_sender
    with transaction(rt.sessions) as session:
        letter = session.execute(select(DeadLetter)).scalar_one()
        assert list(enqueued) == [letter.lead_id]  # stored raw for a worker, never split or read
        assert letter.reason == DeadReason.unverified_sender
        assert replay(session, letter.id, actor="admin:test", routing=rt.routing).enqueue
    assert process(rt, letter.lead_id, owner="test") == "ignored"  # the mail; its leads went on
    with rt.sessions() as session:
        parts = session.execute(select(Lead).where(Lead.id != letter.lead_id)).scalars().all()
        assert sorted(p.raw_meta["part"] for p in parts) == ["lead 1 of 3", "lead 2 of 3", "lead 3 of 3"]
        assert {p.state for p in parts} == {LeadState.delivered}
    assert len(sandbox.opportunities()) == 3


def test_a_forged_auto_reply_from_an_unproven_sender_is_ignored_never_split(
    dovecot: Dovecot, folders, make_runtime, sandbox
) -> None:
    """An auto-reply header on a spoofed table of leads must not make it skip the sender check and
    be split (the table's reader never asks whether the mail is an auto-reply)."""
    table = broker_mail(
        [("leads.csv", CSV, broker_csv(people(3, start=700)))], message_id="<forged@x.example>"
    )
    forged = received(b"Auto-Submitted: auto-replied\r\n" + table, authenticated=False)
    checked = {**copy.deepcopy(BROKER_CHANNEL), "verify_sender": True}  # a broker whose senders are checked
    rt = make_runtime(
        {"leads": inbox(dovecot, folders(forged))}, sandbox=sandbox, channels={"northbridge": checked}
    )
    polled = poll(rt)
    assert (polled.ignored, polled.parts) == (1, [])
    [row] = mail_leads(rt)
    assert row.state == LeadState.ignored and "automatic reply" in (row.note or "")
    assert sandbox.opportunities() == []


def test_a_worker_with_a_broker_queues_the_leads_of_a_mail_instead_of_reading_them_all_in_one_task(
    dovecot: Dovecot, folders, make_runtime
) -> None:
    table = broker_mail([("leads.csv", CSV, broker_csv(people(4, start=800)))], message_id="<q@nb.example>")
    rt = _runtime(make_runtime, dovecot, folders(received(table)))
    poll(rt, read=False)
    [mail] = mail_leads(rt)
    queued = Enqueued()
    seen: list[str] = []
    event.listen(rt.engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    event.listen(rt.engine, "commit", lambda *_: seen.append("COMMIT"))

    def enqueue(lead_ids: list[int]) -> int:
        seen.append("published")
        return queued(lead_ids)

    assert process(rt, mail.id, owner="test", enqueue=enqueue) == "ignored"  # the mail; its leads queued
    with rt.sessions() as session:
        parts = session.execute(select(Lead.id, Lead.state).where(Lead.id != mail.id)).all()
    assert sorted(queued) == sorted(lead_id for lead_id, _ in parts) and len(parts) == 4
    assert {state for _, state in parts} == {LeadState.received}  # each its own task
    # the reading that recorded them began unflushed, and its commit waits for the disk: they are
    # published only once they are durable
    unflushed = next(n for n, sql in enumerate(seen) if UNFLUSHED_CLAUSE in sql and "FROM leads" in sql)
    flushed = seen.index(FLUSHED)
    assert unflushed < flushed < seen.index("COMMIT", flushed) < seen.index("published")
