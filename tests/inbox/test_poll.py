"""An inbox of portal notifications becomes the right leads, once — against a real Dovecot."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from sqlalchemy import update

from leadrelay.db import transaction
from leadrelay.models import Lead, LeadState
from leadrelay.runtime import Runtime
from leadrelay.schema import upgrade
from leadrelay.testing.dovecot import Dovecot, received
from leadrelay.testing.mails import enquiries, sample, templates, unrouted
from leadrelay.worker import normalise
from leadrelay.worker.imap import session, state
from leadrelay.worker.imap.connection import open_session
from leadrelay.worker.pipeline import process
from tests.conftest import make_settings
from tests.helpers import dead_letters
from tests.inbox.conftest import inbox_routing
from tests.inbox.support import OWN_DOMAINS, Enqueued, inbox, mail_leads, poll, watermark

NEW_BROKER = [*OWN_DOMAINS, "newbroker.example"]  # an inbox that trusts a new broker's mail too


def test_a_mailbox_of_every_portal_mail_becomes_the_right_leads(
    dovecot: Dovecot, folders, make_runtime
) -> None:
    mails = templates()
    folder = folders(*(template.raw() for template in mails), unrouted(1))
    rt = make_runtime({"leads": inbox(dovecot, folder)})
    enqueued = Enqueued()

    report = poll(rt, enqueue=enqueued)

    assert report.ok, report.error
    read = [t for t in mails if t.lead or t.follow_up]  # a follow-up is read too: it waits for its enquiry
    assert (report.new, report.duplicate, report.ignored, report.failed) == (
        len(read),
        0,
        len(mails) - len(read),
        1,
    )
    assert report.marked == len(mails) + 1
    rows = mail_leads(rt)
    assert len(rows) == len(mails) + 1
    by_uid = {row.raw_meta["uid"]: row for row in rows}
    for uid, template in enumerate(mails, start=1):
        row = by_uid[uid]
        assert row.raw_body == received(template.raw())  # as the mail server filed it
        assert row.content_type == "message/rfc822"
        if template.lead:
            assert row.channel == template.channel, template.key
        elif row.channel == "unrouted":  # a bounce or auto-reply names no portal: ignored when sorted
            assert row.state == LeadState.ignored and row.note, template.key
    # every mail is on the broker (stored raw, the workers sort it); the unrouted one is a dead letter
    [stray] = [row for row in rows if row.channel == "unrouted" and row.state != LeadState.ignored]
    assert sorted(enqueued) == sorted(row.id for row in rows)
    assert stray.state == LeadState.dead
    [letter] = dead_letters(rt, stray.id)
    assert letter.reason == "parse_error"
    assert "inboxes.leads.channel" in letter.message and "parse.senders" in letter.message
    assert dovecot.message_ids(folder, seen=False) == set()
    assert watermark(rt).last_uid == len(mails) + 1


def test_a_second_pass_imports_nothing_and_new_mail_is_picked_up(
    dovecot: Dovecot, folders, make_runtime
) -> None:
    folder = folders(sample("hubblehq", "email-viewing-request.eml"))
    rt = make_runtime({"leads": inbox(dovecot, folder)})
    assert poll(rt).new == 1

    again = poll(rt)
    assert (again.new, again.duplicate, again.marked) == (0, 0, 0)

    dovecot.deliver(folder, sample("kontor", "email-lead.eml"))
    later = poll(rt)
    assert (later.new, later.marked) == (1, 1)
    assert [row.channel for row in mail_leads(rt)] == ["hubblehq", "kontor"]


def test_mail_already_read_by_a_person_is_still_imported(dovecot: Dovecot, folders, make_runtime) -> None:
    """UNSEEN alone misses mail someone opened first; UIDs do not."""
    folder = folders(sample("liquidspace", "email-tour-request.eml"))
    with dovecot.client() as client:
        client.append(folder, sample("workthere", "email-enquiry.eml"), seen=True)
    rt = make_runtime({"leads": inbox(dovecot, folder)})
    report = poll(rt)
    assert report.new == 2
    assert {row.channel for row in mail_leads(rt)} == {"workthere", "liquidspace"}


def test_processed_mail_is_moved_when_a_processed_folder_is_set(
    dovecot: Dovecot, folders, make_runtime
) -> None:
    hubble = [
        sample("hubblehq", name) for name in ("email-viewing-request.eml", "email-forwarded-enquiry.eml")
    ]
    folder, done = folders(*hubble), folders(prefix="done")
    rt = make_runtime({"leads": inbox(dovecot, folder, processed_folder=done)})
    report = poll(rt)
    assert (report.new, report.marked) == (2, 2)
    assert report.marks == f"moved to {done}"
    assert dovecot.count(folder) == 0
    assert len(dovecot.message_ids(done, seen=False)) == 2  # moved, not read


def test_without_move_support_mail_is_copied_then_expunged(dovecot: Dovecot, folders, make_runtime) -> None:
    """A server without MOVE (here: the same Dovecot announcing no MOVE on 127.0.0.2)."""
    folder = folders(sample("kontor", "email-lead.eml"), sample("workthere", "email-enquiry.eml"))
    done = folders(prefix="done")
    rt = make_runtime({"leads": inbox(dovecot, folder, host="127.0.0.2", processed_folder=done)})
    with open_session("leads", rt.routing.inboxes["leads"]) as session:
        assert "MOVE" not in session.capabilities and "UIDPLUS" in session.capabilities
    report = poll(rt)
    assert (report.new, report.marked) == (2, 2)
    assert (dovecot.count(folder), dovecot.count(done)) == (0, 2)


def test_the_inbox_channel_is_the_default_when_the_mail_does_not_say(
    dovecot: Dovecot, folders, make_runtime
) -> None:
    folder = folders(unrouted(2), sample("kontor", "email-lead.eml"))  # Kontor's mail says Kontor
    rt = make_runtime({"leads": inbox(dovecot, folder, channel="hubblehq", trusted_forwarders=NEW_BROKER)})
    report = poll(rt)
    assert report.failed == 0
    assert Counter(row.channel for row in mail_leads(rt)) == {"hubblehq": 1, "kontor": 1}
    assert [row.raw_meta["channel_from"] for row in mail_leads(rt)] == ["inbox", "mail"]


def test_unrouted_mail_is_routed_and_replayed_once_the_routing_file_says_where(
    dovecot: Dovecot, folders, make_runtime, sandbox
) -> None:
    folder = folders(unrouted(3))
    before = make_runtime({"leads": inbox(dovecot, folder)})
    assert poll(before).failed == 1
    [stranded] = mail_leads(before)

    # the operator names the inbox's channel; the next pass routes the mail and replays it
    trusted = NEW_BROKER  # HubbleHq verifies its senders: the new broker's authenticated domain is trusted
    rt = make_runtime(
        {"leads": inbox(dovecot, folder, channel="hubblehq", trusted_forwarders=trusted)}, sandbox=sandbox
    )
    enqueued = Enqueued()
    report = poll(rt, enqueue=enqueued)
    assert (report.rerouted, report.new, report.marked) == (1, 0, 0)
    assert enqueued == [stranded.id]
    [row] = mail_leads(rt)
    assert (row.id, row.channel, row.state) == (stranded.id, "hubblehq", LeadState.received)
    [letter] = dead_letters(rt, row.id)
    assert (letter.status, letter.resolved_by) == ("replayed", "inbox:leads")

    assert process(rt, row.id, owner="test") == "delivered"
    [opportunity] = sandbox.opportunities()
    assert opportunity["LeadSource"] == 17
    assert poll(rt).rerouted == 0


def test_mail_read_by_a_worker_of_the_previous_release_is_held_then_rerouted_never_read_unchecked(
    dovecot: Dovecot, folders, make_runtime, sandbox, monkeypatch
) -> None:
    """During an upgrade a worker that does not sort yet may take a stored mail: it finds no channel
    (the mail waits under ``unrouted``) and dead-letters it; the next pass routes it and replays it,
    and a worker of this release sorts it — its sender checked — then delivers it."""
    folder = folders(sample("hubblehq", "email-viewing-request.eml"))
    rt = make_runtime({"leads": inbox(dovecot, folder)}, sandbox=sandbox)
    stored = poll(rt, read=False)
    [mail] = mail_leads(rt)
    assert (stored.new, mail.channel, mail.raw_meta["unsorted"]) == (1, "unrouted", True)
    with monkeypatch.context() as old:
        old.setattr(normalise, "unsorted", lambda meta: False)  # the earlier release knows no such mark
        assert process(rt, mail.id, owner="old-worker") == "dead"
    [letter] = dead_letters(rt, mail.id)
    assert letter.reason == "parse_error" and "'unrouted' is not in the routing file" in letter.message

    enqueued = Enqueued()
    assert poll(rt, enqueue=enqueued, read=False).rerouted == 1
    assert enqueued == [mail.id]
    assert process(rt, mail.id, owner="test") == "delivered"
    [row] = mail_leads(rt)
    assert (row.channel, row.raw_meta["sender_check"], "unsorted" in row.raw_meta) == (
        "hubblehq",
        "dmarc",
        False,
    )
    assert len(sandbox.opportunities()) == 1


def test_a_stored_mail_whose_reading_keeps_failing_is_left_to_an_operator(
    dovecot: Dovecot, folders, make_runtime
) -> None:
    """No channel yet, and every reading dies: a dead letter that says so, which no pass replays."""
    folder = folders(sample("kontor", "email-lead.eml"))
    rt = make_runtime({"leads": inbox(dovecot, folder)})
    poll(rt, read=False)
    [mail] = mail_leads(rt)
    with transaction(rt.sessions) as tx:  # what workers killed in the middle of reading it leave
        tx.execute(
            update(Lead).where(Lead.id == mail.id).values(unfinished_runs=rt.settings.max_unfinished_runs)
        )
    assert process(rt, mail.id, owner="test") == "dead"
    [letter] = dead_letters(rt, mail.id)
    assert letter.reason == "parse_error" and letter.detail["runs"] == rt.settings.max_unfinished_runs

    assert poll(rt).rerouted == 0  # not rerouted and replayed each pass: no loop
    assert dead_letters(rt, mail.id)[0].status == "open"


def test_a_large_folder_is_searched_in_windows(dovecot: Dovecot, folders, make_runtime, monkeypatch) -> None:
    monkeypatch.setattr(session, "SEARCH_WINDOW", 3)  # 20,000 in production
    folder = folders(*(mail.raw for mail in enquiries(10)))
    rt = make_runtime({"leads": inbox(dovecot, folder, batch_size=4)})
    assert poll(rt).new == 10
    dovecot.deliver(folder, enquiries(1, first=10)[0].raw)
    assert poll(rt).new == 1


def test_the_embedded_sqlite_ledger_keeps_the_same_promises(
    dovecot: Dovecot, folders, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    upgrade(url)
    mails = [mail.raw for mail in enquiries(3)]
    folder = folders(*mails, mails[0])
    rt = Runtime.load(make_settings(database_url=url), inbox_routing({"leads": inbox(dovecot, folder)}))
    try:
        report = poll(rt)
        assert (report.new, report.duplicate, report.marked) == (3, 1, 4)
        assert poll(rt).marked == 0
        with transaction(rt.sessions) as session:
            assert state.acquire(session, "leads", source="x", owner="other", lease_seconds=60)
        assert poll(rt).busy
        assert len(mail_leads(rt)) == 3
    finally:
        rt.close()
