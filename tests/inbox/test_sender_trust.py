"""Issue 14, done when: a spoofed ``From: …@hubblehq.com`` without authentication results
is held, not delivered, and listed as such — through a real Dovecot inbox, the worker
pipeline and the Nexudus sandbox. An admin's replay delivers it, once."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import REGISTRY
from sqlalchemy import select

from leadrelay.api.app import create_app
from leadrelay.db import transaction
from leadrelay.models import AuditEntry, DeadLetterStatus, Lead, LeadState
from leadrelay.runtime import Runtime
from leadrelay.testing.dovecot import MX, Dovecot
from leadrelay.testing.mails import sample, unrouted, vary
from leadrelay.testing.processes import service_env
from leadrelay.worker import dead_letters as dlq
from leadrelay.worker import normalise
from leadrelay.worker.pipeline import process
from tests.conftest import ThreadedServer, make_settings, routing_with
from tests.helpers import dead_letters
from tests.inbox.support import Enqueued, inbox, mail_leads, poll, routing_file
from tests.test_cli import cli

Folders = Callable[..., str]
MakeRuntime = Callable[..., Runtime]
TOKEN = "admin-token-for-tests-0123456789"
GENUINE = sample("hubblehq", "email-viewing-request.eml")
REF = "enq_8F2KQ7XW"


def spoof(serial: int, *headers: str) -> bytes:
    """HubbleHq's notification about another enquiry, written by someone else."""
    other = {
        REF: f"enq_SPOOF{serial:03d}",
        "amara.okafor@brightlane.io": f"pat.{serial}@other-client.example",
        "Amara Okafor": f"Pat Other{serial}",
        "Brightlane Ltd": f"Other Client {serial} Ltd",
        "07700 900123": f"07700 90045{serial}",
    }
    raw = vary(GENUINE, other, message_id=f"<spoof-{serial}@attacker.example>")
    return "".join(f"{h}\r\n" for h in headers).encode() + raw


def by_ref(rt: Runtime) -> dict[str, Lead]:
    """The inbox's leads by the enquiry reference in their raw mail."""
    refs = (REF, "enq_SPOOF001", "enq_SPOOF002")
    return {ref: row for row in mail_leads(rt) for ref in refs if ref.encode() in (row.raw_body or b"")}


def test_a_spoofed_hubblehq_mail_is_held_listed_and_delivered_once_when_an_admin_replays_it(
    dovecot: Dovecot, folders: Folders, make_runtime: MakeRuntime, sandbox: Any, tmp_path: Path
) -> None:
    folder = folders()
    dovecot.deliver(folder, GENUINE)  # the server found HubbleHq's domain authenticated
    dovecot.deliver(folder, spoof(1), authenticated=None)  # a server that says nothing: no results
    dovecot.deliver(folder, spoof(2), authenticated=False)  # the server says DMARC failed
    inboxes = {"leads": inbox(dovecot, folder)}
    rt = make_runtime(inboxes, sandbox=sandbox)
    enqueued = Enqueued()
    held_metric = {"channel": "hubblehq", "reason": "unverified_sender"}
    before = REGISTRY.get_sample_value("leadrelay_dead_letters_total", held_metric) or 0.0

    report = poll(rt, enqueue=enqueued)

    assert report.ok, report.error
    assert (report.new, report.failed) == (1, 2)
    rows = by_ref(rt)
    genuine, silent, failing = rows[REF], rows["enq_SPOOF001"], rows["enq_SPOOF002"]
    # each mail is stored raw for a worker; the spoofed ones are held by its sender check, never read
    assert sorted(enqueued) == sorted(row.id for row in (genuine, silent, failing))
    assert REGISTRY.get_sample_value("leadrelay_dead_letters_total", held_metric) == before + 2
    assert genuine.raw_meta["sender_check"] == "dmarc"
    for held, said in (
        (silent, f"no Authentication-Results from a trusted server ({MX})"),
        (failing, "dmarc=fail"),
    ):
        assert held.state == LeadState.dead and held.channel == "hubblehq"
        assert held.raw_body and b"enq_SPOOF" in held.raw_body  # the raw mail is kept
        [letter] = dead_letters(rt, held.id)
        assert letter.reason == "unverified_sender" and letter.status == DeadLetterStatus.open
        assert "sender domain hubblehq.com is not authenticated" in letter.message and said in letter.message
        assert process(rt, held.id, owner="test") == "dead"  # a worker that is handed it anyway does nothing

    assert process(rt, genuine.id, owner="test") == "delivered"
    assert [o["Name"] for o in sandbox.opportunities()] and len(sandbox.opportunities()) == 1

    env = service_env(LEADRELAY_CONFIG=str(routing_file(tmp_path, inboxes)), COLUMNS="220")
    listed = cli("dlq", "list", "--reason", "unverified_sender", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    data = json.loads(listed.stdout)
    assert sorted(row["lead_id"] for row in data["dead_letters"]) == sorted([silent.id, failing.id])
    assert {row["reason"] for row in data["dead_letters"]} == {"unverified_sender"}
    table = cli("dlq", "list", env=env)
    assert table.returncode == 0, table.stderr
    assert "Open: 2 unverified_sender." in table.stdout

    admin = Runtime.load(make_settings(database_url=rt.settings.database_url, admin_token=TOKEN), rt.routing)
    try:
        with ThreadedServer(create_app(admin)) as server, httpx.Client(base_url=server.base_url) as client:
            api = client.get(
                "/admin/api/dead-letters",
                params={"reason": "unverified_sender"},
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
            assert sorted(row["lead_id"] for row in api.json()) == sorted([silent.id, failing.id])
            assert client.post("/admin/login", data={"token": TOKEN, "name": "Jo"}).status_code == 303
            page = client.get("/admin/dead-letters", params={"reason": "unverified_sender"}).text
            assert 'value="unverified_sender"' in page  # the reason filter offers it
            assert page.count('class="tag unverified_sender"') >= 2
    finally:
        admin.close()

    # the admin checked enquiry SPOOF001 in HubbleHq's dashboard: a replay skips the check
    [letter] = dead_letters(rt, silent.id)
    with transaction(rt.sessions) as session:
        replayed = dlq.replay(session, letter.id, actor="admin:jo", routing=rt.routing)
    assert replayed.enqueue and "sender taken as verified" in replayed.message
    assert process(rt, silent.id, owner="test") == "delivered"
    with transaction(rt.sessions) as session:
        again = dlq.replay(session, letter.id, actor="admin:jo", routing=rt.routing)
    assert not again.enqueue
    assert process(rt, silent.id, owner="test") == "delivered"  # settled: nothing more
    assert len(sandbox.opportunities()) == 2  # the genuine one and the replayed one, each once
    with rt.sessions() as session:
        [entry] = session.execute(
            select(AuditEntry).where(AuditEntry.action == "dead_letter.replay")
        ).scalars()
    assert (entry.actor, entry.detail["sender_check"], entry.detail["reason"]) == (
        "admin:jo",
        "overridden",
        "unverified_sender",
    )
    # and the next poll changes nothing: the held mail is not read again
    assert (poll(rt).new, len(dead_letters(rt, failing.id))) == (0, 1)


def test_a_forged_authentication_results_header_is_ignored(
    dovecot: Dovecot, folders: Folders, make_runtime: MakeRuntime
) -> None:
    untrusted = spoof(1, "Authentication-Results: mx.attacker.example; dmarc=pass header.from=hubblehq.com")
    below = spoof(
        2, "X-Mailer: spoofer", f"Authentication-Results: {MX}; dmarc=pass header.from=hubblehq.com"
    )
    folder = folders()
    dovecot.deliver(
        folder, untrusted, authenticated=None
    )  # the sender's own claim, from a server not trusted
    dovecot.deliver(folder, below, authenticated=False)  # the trusted server's real verdict on top: fail
    rt = make_runtime({"leads": inbox(dovecot, folder)})

    report = poll(rt)

    assert (report.new, report.failed) == (0, 2)
    assert {letter.reason for letter in dead_letters(rt)} == {"unverified_sender"}


def test_a_channel_that_opts_out_delivers_unauthenticated_mail(
    dovecot: Dovecot, folders: Folders, make_runtime: MakeRuntime
) -> None:
    folder = folders()
    dovecot.deliver(folder, spoof(1), authenticated=None)
    hubble = routing_with().channels["hubblehq"].model_dump(exclude_none=True)
    off = make_runtime(
        {"leads": inbox(dovecot, folder)}, channels={"hubblehq": {**hubble, "verify_sender": False}}
    )

    report = poll(off)

    assert (report.new, report.failed) == (1, 0)
    [row] = mail_leads(off)
    assert row.raw_meta["sender_check"] == "off"


def test_unrouted_mail_routed_later_to_a_verifying_channel_is_checked_too(
    dovecot: Dovecot, folders: Folders, make_runtime: MakeRuntime
) -> None:
    folder = folders(unrouted(7))  # authenticated, but as newbroker.example, not as HubbleHq
    assert poll(make_runtime({"leads": inbox(dovecot, folder)})).failed == 1
    [stranded] = mail_leads(make_runtime({"leads": inbox(dovecot, folder)}))

    # the operator points the inbox at HubbleHq: the stranded mail is routed, and held
    rt = make_runtime({"leads": inbox(dovecot, folder, channel="hubblehq")})
    enqueued = Enqueued()
    report = poll(rt, enqueue=enqueued)

    assert report.rerouted == 0 and enqueued == []
    [row] = mail_leads(rt)
    assert (row.id, row.channel, row.state) == (stranded.id, "hubblehq", LeadState.dead)
    first, second = dead_letters(rt, row.id)
    assert (first.reason, first.status) == ("parse_error", DeadLetterStatus.replayed)
    assert (second.reason, second.status) == ("unverified_sender", DeadLetterStatus.open)
    assert "sent from newbroker.example" in second.message


def test_a_spoofed_mail_an_earlier_worker_could_not_read_is_held_and_an_admin_replay_releases_it(
    dovecot: Dovecot, folders: Folders, make_runtime: MakeRuntime, sandbox: Any, monkeypatch: Any
) -> None:
    """Dead-lettered unsorted by a worker of the previous release, rerouted, held by this release's
    sort — and an admin's replay then delivers it once, instead of holding it again for ever."""
    folder = folders()
    dovecot.deliver(folder, spoof(9), authenticated=None)
    rt = make_runtime({"leads": inbox(dovecot, folder)}, sandbox=sandbox)
    poll(rt, read=False)
    [mail] = mail_leads(rt)
    with monkeypatch.context() as old:
        old.setattr(normalise, "unsorted", lambda meta: False)  # the earlier release knows no such mark
        assert process(rt, mail.id, owner="old-worker") == "dead"
    assert poll(rt, read=False).rerouted == 1
    assert process(rt, mail.id, owner="test") == "dead"  # sorted now: its sender is not proven
    held = dead_letters(rt, mail.id)[-1]
    assert held.reason == "unverified_sender"

    with transaction(rt.sessions) as session:
        assert dlq.replay(session, held.id, actor="admin:jo", routing=rt.routing).enqueue
    assert process(rt, mail.id, owner="test") == "delivered"
    assert len(sandbox.opportunities()) == 1
