"""GDPR erasure by e-mail on the real Postgres: the person leaves every table; everyone else stays."""

from __future__ import annotations

import os
import subprocess
import sys
from email.message import EmailMessage

from sqlalchemy import select

from leadrelay.db import transaction
from leadrelay.models import AuditEntry, CoworkerCache
from leadrelay.runtime import Runtime
from leadrelay.worker import dead_letters as dlq
from leadrelay.worker.erasure import erase, find_leads, reference
from leadrelay.worker.imap.intake import Outcome, Place
from leadrelay.worker.imap.store import record_message
from tests.dead_letters.test_replay import settle
from tests.helpers import canonical, dead_letters, ingest, lead
from tests.operations.support import MESSAGE, PERSON, ledger_text, traces_of_the_person
from tests.test_cli import cli

EMAIL = PERSON["email"]


def send(rt: Runtime, ref: str, **changes: object) -> int:
    return ingest(rt, canonical(external_id=ref, contact=PERSON, message=MESSAGE, **changes))


def unrouted_mail(rt: Runtime, text: str, uid: int) -> int:
    """A notification no channel claims, its body in base64: an inbox's parse_error dead letter."""
    mail = EmailMessage()
    mail["From"] = "leads@unknown-portal.example"
    mail["To"] = "leads@operator.example"
    mail["Subject"] = "New enquiry"
    mail["Message-ID"] = f"<erase-{uid}@unknown-portal.example>"
    mail.set_content(text, charset="utf-8", cte="base64")
    raw = mail.as_bytes()
    assert EMAIL.encode() not in raw  # only a reader that decodes the part finds the person
    with transaction(rt.sessions) as session:
        place = Place(inbox="leads", folder="INBOX", uidvalidity=1, uid=uid)
        recorded = record_message(session, raw, place=place, routing=rt.routing, default=None)
    assert recorded.settled is Outcome.failed
    return recorded.lead_id


def erase_now(rt: Runtime, email: str, *, dry_run: bool = False) -> object:
    with transaction(rt.sessions) as session:
        return erase(session, email, actor="test:dpo", dry_run=dry_run)


def cached_addresses(rt: Runtime) -> set[str]:
    with rt.sessions() as session:
        return set(session.execute(select(CoworkerCache.email)).scalars())


def test_erasure_removes_the_person_from_every_table_and_leaves_everyone_else(runtime) -> None:
    first = send(runtime, "er-1")
    assert settle(runtime, first) == "delivered"
    later = send(runtime, "er-2")  # the same person again: a later introduction
    assert settle(runtime, later) == "attached"
    unreadable = send(runtime, "er-3", requirements={"term_months": 9999})
    assert settle(runtime, unreadable) == "dead"
    [letter] = dead_letters(runtime, unreadable)
    with transaction(runtime.sessions) as session:
        dlq.discard(
            session, letter.id, actor="test:admin", why=f"test lead by {PERSON['full_name']} <{EMAIL}>"
        )
    mail = unrouted_mail(runtime, f"Name: {PERSON['full_name']}\nEmail: {EMAIL}\nPhone: {PERSON['phone']}", 1)
    waiting = send(runtime, "er-5")  # received, not yet read
    someone_else = ingest(runtime, canonical(external_id="other-1"))
    assert settle(runtime, someone_else) == "delivered"
    theirs = lead(runtime, someone_else)
    delivered = lead(runtime, first)
    assert cached_addresses(runtime) == {EMAIL, theirs.lead["contact"]["email"]}

    report = erase_now(runtime, EMAIL.upper())

    assert report.lead_ids == [first, later, unreadable, mail, waiting]
    assert report.stopped == [waiting]
    assert lead(runtime, waiting).state == "ignored"
    assert {(r.coworker_id, r.opportunity_id) for r in report.in_nexudus} == {
        (delivered.coworker_id, delivered.opportunity_id)
    }
    assert traces_of_the_person(runtime) == []
    for lead_id in report.lead_ids:
        row = lead(runtime, lead_id)
        assert (row.raw_body, row.identity, row.purged_why) == (None, None, "erasure")
    assert lead(runtime, first).opportunity_id == delivered.opportunity_id  # what it did is still known
    [mail_letter] = dead_letters(runtime, mail)
    assert mail_letter.status == "discarded"
    assert report.dead_letters_closed == 1
    untouched = lead(runtime, someone_else)
    assert (untouched.raw_body, untouched.lead, untouched.purged_at) == (theirs.raw_body, theirs.lead, None)
    assert cached_addresses(runtime) == {theirs.lead["contact"]["email"]}
    with runtime.sessions() as session:
        [entry] = session.execute(select(AuditEntry).where(AuditEntry.action == "privacy.erase")).scalars()
    assert (entry.actor, entry.target) == ("test:dpo", f"person:{reference(EMAIL)}")
    assert entry.detail["lead_ids"] == report.lead_ids


def test_an_address_that_merely_contains_the_persons_is_someone_else(runtime) -> None:
    theirs = ingest(runtime, b"Reply to jo." + EMAIL.encode() + b" or " + EMAIL.encode() + b".uk")
    mine = ingest(runtime, b"Write to <" + EMAIL.upper().encode() + b">.")
    with runtime.sessions() as session:
        assert find_leads(session, EMAIL) == [mine]
    erase_now(runtime, EMAIL)
    assert lead(runtime, theirs).raw_body is not None
    assert lead(runtime, mine).raw_body is None


def test_a_dry_run_lists_the_leads_and_changes_nothing(runtime) -> None:
    lead_id = send(runtime, "dry-1")
    assert settle(runtime, lead_id) == "delivered"
    before = ledger_text(runtime)

    report = erase_now(runtime, EMAIL, dry_run=True)

    assert (report.lead_ids, report.stopped) == ([lead_id], [])
    assert ledger_text(runtime) == before


def cli_env() -> dict[str, str]:
    return {**os.environ, "COLUMNS": "200"}


def test_the_erase_command_erases_reports_and_points_at_nexudus(runtime) -> None:
    lead_id = send(runtime, "cli-1")
    assert settle(runtime, lead_id) == "delivered"
    customer = lead(runtime, lead_id).coworker_id

    preview = cli("erase", "--email", EMAIL, "--dry-run", env=cli_env())
    assert preview.returncode == 0, preview.stderr
    assert f"Would erase 1 lead: {lead_id}." in preview.stdout
    assert lead(runtime, lead_id).raw_body is not None

    erased = cli("erase", "--email", EMAIL, "--yes", env=cli_env())
    assert erased.returncode == 0, erased.stderr
    assert f"Erased 1 lead: {lead_id}." in erased.stdout
    assert f"audit reference {reference(EMAIL)}" in erased.stdout
    assert str(customer) in erased.stdout  # the Nexudus customer, to erase there too
    assert "Nexudus keeps its own copy of this person" in erased.stdout
    assert EMAIL not in erased.stdout + erased.stderr
    assert traces_of_the_person(runtime) == []


def test_the_erase_command_asks_first_and_stops_on_no(runtime) -> None:
    lead_id = send(runtime, "ask-1")
    result = subprocess.run(
        [sys.executable, "-m", "leadrelay.cli", "erase", "--email", EMAIL],
        input="n\n",
        capture_output=True,
        text=True,
        timeout=120,
        env=cli_env(),
    )
    assert result.returncode == 1
    assert "Erase the personal data of 1 lead?" in result.stdout
    assert lead(runtime, lead_id).raw_body is not None


def test_erasing_an_unknown_address_says_so(runtime) -> None:
    known = send(runtime, "known-1")
    result = cli("erase", "--email", "nobody@example.net", "--yes", env=cli_env())
    assert result.returncode == 0, result.stderr
    assert "No lead in the ledger names this address. Recorded in the audit log." in result.stdout
    with runtime.sessions() as session:
        [entry] = session.execute(select(AuditEntry)).scalars()
    assert (entry.action, entry.target) == ("privacy.erase", f"person:{reference('nobody@example.net')}")
    row = lead(runtime, known)
    assert (row.raw_body is not None, row.purged_at) == (True, None)


def test_erasing_something_that_is_no_address_is_refused_in_one_line(runtime) -> None:
    result = cli("erase", "--email", "zebulon", "--yes", env=cli_env())
    assert result.returncode == 1
    assert "'zebulon' is not an e-mail address" in result.stderr
    assert "Traceback" not in result.stderr


def test_erasure_finds_a_person_named_only_in_a_table_attached_to_a_mail(clean_db: str, sandbox) -> None:
    """A broker's CSV, base64 in the mail: erasure finds the mail and the person's row, not the others'."""
    from leadrelay.testing.several import BROKER_CHANNEL, broker_csv, broker_mail, people
    from tests.conftest import routing_with, sandbox_settings

    clients = people(3, start=700)
    raw = broker_mail([("leads.csv", "text/csv", broker_csv(clients))], message_id="<erase-csv@nb.example>")
    assert clients[1].email.encode() not in raw  # base64: only a reader of the table finds the person
    rt = Runtime.load(
        sandbox_settings(clean_db, sandbox), routing_with(channels={"northbridge": BROKER_CHANNEL})
    )
    try:
        with transaction(rt.sessions) as session:
            place = Place(inbox="leads", folder="INBOX", uidvalidity=1, uid=1)
            recorded = record_message(session, raw, place=place, routing=rt.routing, default=None)
        assert recorded.settled is Outcome.several and len(recorded.parts) == 3
        with rt.sessions() as session:
            found = find_leads(session, clients[1].email)
        assert found == [recorded.lead_id, recorded.parts[1]]  # the mail, and the person's row
    finally:
        rt.close()
