"""Exactly once on the paths around the happy one: resends, edits, slow workers, erasure, lookups.

Each test is a way a second opportunity (or a lead that never settles) was made
on an earlier version, replayed against the real ledger and the sandbox over HTTP.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from pydantic import SecretStr
from sqlalchemy import update
from sqlalchemy.exc import DataError

from leadrelay.db import transaction, utcnow
from leadrelay.ledger import claim
from leadrelay.models import DeadLetterStatus, Lead, LeadState
from leadrelay.nexudus.classify import Outcome
from leadrelay.nexudus.client import NexudusClient
from leadrelay.runtime import SANDBOX_PASSWORD, SANDBOX_USERNAME, Runtime
from leadrelay.worker import dead_letters as dlq
from leadrelay.worker.delivery import policy
from leadrelay.worker.pipeline import process
from tests.conftest import OPEN_BUDGET, routing_with, sandbox_settings
from tests.delivery.stall import expire_lease, stalled_before_call, stalled_before_send
from tests.helpers import at_once, attempts, canonical, dead_letters, ingest, lead, make_due, socket_server
from tests.sandbox.support import coworker_body, opportunity_body


def settle(rt: Runtime, lead_id: int, owner: str = "w") -> str:
    """Run the pipeline until the lead stops moving (every wait let pass at once)."""
    outcome = process(rt, lead_id, owner=owner)
    while outcome in ("retry", "throttled", "waiting"):
        make_due(rt, lead_id)
        outcome = process(rt, lead_id, owner=owner)
    return outcome


def exhaust_with_a_create_that_landed_unseen(rt: Runtime, sandbox, lead_id: int) -> None:
    """The create commits but its answer is lost, and every lookup fails until the retries run out."""
    sandbox.add_fault("drop_after_commit", method="POST", path_regex="crmopportunities$", times=1)
    sandbox.add_fault("status", method="GET", path_regex="crmopportunities$", status=503, times=None)
    assert settle(rt, lead_id) == "dead"
    assert dead_letters(rt, lead_id)[0].reason == "exhausted"
    assert len(sandbox.opportunities()) == 1
    sandbox.clear_faults()


def test_a_partners_resend_of_an_exhausted_lead_finds_the_opportunity_it_made(runtime, sandbox) -> None:
    first = ingest(runtime, canonical())
    exhaust_with_a_create_that_landed_unseen(runtime, sandbox, first)

    resend = ingest(runtime, canonical())  # the same enquiry, a new webhook-id
    assert settle(runtime, resend) == "delivered"
    assert len(sandbox.opportunities()) == 1
    assert lead(runtime, resend).opportunity_id == sandbox.opportunities()[0]["Id"]
    assert dead_letters(runtime, first)[0].status == DeadLetterStatus.superseded


def test_editing_an_exhausted_dead_letter_finds_the_opportunity_it_made(runtime, sandbox) -> None:
    """No portal reference: the Name tag is made from the content, which the edit changes."""
    lead_id = ingest(runtime, canonical(external_id=None))
    exhaust_with_a_create_that_landed_unseen(runtime, sandbox, lead_id)
    [letter] = dead_letters(runtime, lead_id)

    with transaction(runtime.sessions) as session:
        form = dlq.editable_lead(session, letter.id)
        form["message"] = "Corrected by the operator"
        edited = dlq.edit(session, letter.id, form, actor="test:admin", routing=runtime.routing)
    assert edited.outcome == "queued"
    assert "may have reached Nexudus" in edited.message
    assert settle(runtime, lead_id) == "delivered"
    assert len(sandbox.opportunities()) == 1


def test_a_create_that_lands_after_its_deadline_is_waited_for_not_made_again(
    clean_db, routing, sandbox
) -> None:
    """Nexudus takes 1.5 s to make it; the client gave up at 0.5 s. A retry must not look too soon."""
    settings = sandbox_settings(clean_db, sandbox, nexudus_timeout=0.5, write_landing_seconds=1.5)
    rt = Runtime.load(settings, routing)
    try:
        sandbox.add_fault("delay", method="POST", path_regex="crmopportunities$", seconds=1.5)
        lead_id = ingest(rt, canonical())
        assert process(rt, lead_id, owner="w") == "retry"  # no answer in time: it may land
        retry_now(rt, lead_id)
        assert process(rt, lead_id, owner="w") == "waiting"  # too soon to conclude anything
        assert attempts(rt, lead_id)[-1].call == "opportunity.create"  # and nothing was sent
        time.sleep(2.1)
        retry_now(rt, lead_id)
        assert process(rt, lead_id, owner="w") == "delivered"
        assert len(sandbox.opportunities()) == 1
    finally:
        rt.close()


def retry_now(rt: Runtime, lead_id: int) -> None:
    """The retry schedule's wait is over (and only that one)."""
    with transaction(rt.sessions) as session:
        session.execute(update(Lead).where(Lead.id == lead_id).values(next_attempt_at=utcnow()))


def test_a_replayed_lead_finds_its_own_opportunity_before_becoming_a_note(runtime, sandbox) -> None:
    """Its create landed unseen and it died; meanwhile another broker introduced the same person."""
    first = ingest(runtime, canonical(external_id="broker-a-1"))
    exhaust_with_a_create_that_landed_unseen(runtime, sandbox, first)
    [made] = sandbox.opportunities()
    other = ingest(runtime, canonical(external_id="broker-b-7", message="Via another broker"))
    assert settle(runtime, other) == "delivered"  # the dead lead is no introduction: this one is first
    assert len(sandbox.opportunities()) == 2

    with transaction(runtime.sessions) as session:
        [letter] = [d for d in dead_letters(runtime, first) if d.status == DeadLetterStatus.open]
        dlq.replay(session, letter.id, actor="test:admin", routing=runtime.routing)
    assert settle(runtime, first) == "delivered"  # not attached to the other one as a note
    assert lead(runtime, first).opportunity_id == made["Id"]  # the one it made is on record
    assert len(sandbox.opportunities()) == 2


def test_an_edit_that_makes_a_duplicate_keeps_what_the_lead_was_recognisable(runtime, sandbox) -> None:
    """Its first reading's keys stay: a later copy of what it said then is still recognised as it."""
    lead_id = ingest(runtime, canonical(external_id=None, message="First words"))
    exhaust_with_a_create_that_landed_unseen(runtime, sandbox, lead_id)
    someone_else = {"full_name": "B", "email": "b@x.example"}
    other = ingest(runtime, canonical(external_id="zap-777", contact=someone_else))
    assert settle(runtime, other) == "delivered"
    with transaction(runtime.sessions) as session:
        [letter] = dead_letters(runtime, lead_id)
        same_as_other = lead(runtime, other).lead
        edited = dlq.edit(session, letter.id, same_as_other, actor="test:admin", routing=runtime.routing)
    assert edited.outcome == "duplicate" and "may have reached Nexudus" in edited.message

    resend = ingest(runtime, canonical(external_id=None, message="First words"))  # what it said first
    assert settle(runtime, resend) == "duplicate"
    assert len(sandbox.opportunities()) == 2  # its own (unseen) and the other's, no third


def test_a_lead_marked_by_the_upgrade_keeps_its_tag_through_an_edit(runtime, sandbox) -> None:
    """Migration 0007 marks leads with an unanswered create but knows no Name tag for them."""
    lead_id = ingest(runtime, canonical(external_id=None))
    exhaust_with_a_create_that_landed_unseen(runtime, sandbox, lead_id)
    with transaction(runtime.sessions) as session:  # as the upgrade leaves it
        session.execute(update(Lead).where(Lead.id == lead_id).values(opportunity_name=None, system_id=None))
    [letter] = dead_letters(runtime, lead_id)
    with transaction(runtime.sessions) as session:
        form = dlq.editable_lead(session, letter.id)
        form["message"] = "Corrected after the upgrade"
        dlq.edit(session, letter.id, form, actor="test:admin", routing=runtime.routing)
    assert settle(runtime, lead_id) == "delivered"
    assert len(sandbox.opportunities()) == 1


# where A stalls, which write, and whether an assignment rule picks its ResponsibleId
# first (the rule's transaction writes what is pending, so the create's renewal and
# attempt row commit as one statement on their own, without a transaction around them)
STALLS = [
    ("inside its request", "opportunity.create", "crmopportunities", False),
    ("before its renewal", "coworker.create", "coworkers", False),
    ("before its renewal", "opportunity.create", "crmopportunities", False),
    ("before its renewal", "opportunity.create", "crmopportunities", True),
]


@pytest.mark.parametrize(("where", "call", "path", "assigned"), STALLS)
def test_a_worker_stalled_past_its_lease_sends_nothing(
    runtime, sandbox, monkeypatch, where, call, path, assigned
) -> None:
    """Worker A stalls before a write; B takes the lead over and delivers it; A wakes up.

    Stalled inside its request (after every check A makes), the request's deadline
    stops it. Stalled before its renewal (waiting for the budget), the renewal finds
    the lead gone; the write's attempt row is only written with a renewal that
    succeeded, so A leaves none.
    """
    if assigned:
        routing = routing_with(accounts=OPEN_BUDGET, assignment=[{"pool": "sales", "staff": [501]}])
        runtime = Runtime.load(runtime.settings, routing)
    lead_id = ingest(runtime, canonical())
    customers = len(sandbox.coworkers())
    rescuer = Runtime.load(runtime.settings, runtime.routing)
    rescued: list[str] = []

    def take_over() -> None:
        expire_lease(runtime, lead_id)
        rescued.append(settle(rescuer, lead_id, owner="B"))

    common = dict(account="main", method="POST", path_suffix=path, during=take_over)
    if where == "inside its request":
        past_lease = runtime.settings.lease_seconds + 1
        stalled = stalled_before_send(monkeypatch, runtime, seconds=past_lease, **common)
    else:
        stalled = stalled_before_call(monkeypatch, runtime, **common)
    try:
        with stalled as stalls:
            outcome = process(runtime, lead_id, owner="A")
    finally:
        rescuer.close()
    assert stalls and rescued == ["delivered"]
    assert outcome == "lost_lease"
    assert len(sandbox.opportunities()) == 1
    assert len(sandbox.coworkers()) == customers + 1
    assert lead(runtime, lead_id).state == LeadState.delivered
    if where == "before its renewal":  # B's write only: A recorded nothing for the write it never sent
        assert [a.call for a in attempts(runtime, lead_id)].count(call) == 1
    if assigned:
        assert [o.get("ResponsibleId") for o in sandbox.opportunities()] == [501]
        runtime.close()


def test_a_worker_whose_clock_runs_ahead_cannot_take_a_live_lease(runtime, monkeypatch) -> None:
    """Leases are judged on the database's clock, not on each worker's."""
    lead_id = ingest(runtime, canonical())
    with transaction(runtime.sessions) as session:
        session.execute(update(Lead).where(Lead.id == lead_id).values(state=LeadState.normalised))
    with transaction(runtime.sessions) as session:
        claimed = claim(session, lead_id, owner="A", lease_seconds=60)
        assert claimed is not None and claimed.unfinished_runs == 1
    monkeypatch.setattr("leadrelay.ledger.dbclock.utcnow", lambda: utcnow() + timedelta(minutes=5))
    with transaction(runtime.sessions) as session:
        assert claim(session, lead_id, owner="B-fast-clock", lease_seconds=60) is None
    assert lead(runtime, lead_id).lease_owner == "A"


def drip(conn: socket.socket, stop: threading.Event) -> None:
    """Answer a byte at a time, each well within a per-read timeout."""
    conn.recv(65536)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n")
    for _ in range(40):
        if stop.wait(0.25):
            return
        try:
            conn.sendall(b" ")
        except OSError:
            return


@pytest.fixture
def dripping_server() -> Iterator[str]:
    with socket_server(drip) as url:
        yield url


def test_a_call_ends_at_its_deadline_however_slowly_the_answer_drips(dripping_server: str) -> None:
    """httpx's timeouts are per read; the client's deadline is for the whole call."""
    client = NexudusClient(
        account="slow", base_url=dripping_server, username="u", password=SecretStr("p"), timeout=1.0
    )
    token = type("T", (), {"access": "t", "refresh": None, "expires_at": time.monotonic() + 3600})()
    client._tokens._token = token  # signed in already
    try:
        started = time.monotonic()
        result = client.call("POST", "/api/crm/crmopportunities", json={})
        took = time.monotonic() - started
    finally:
        client.close()
    assert result.outcome is Outcome.retry and result.maybe_committed  # it was sent: it may have landed
    assert took < 3.0, f"the call took {took:.1f}s with a 1s deadline (the answer drips for 10s)"


def test_a_lead_that_cannot_be_read_settles_as_a_parse_error_after_a_few_tries(runtime, monkeypatch) -> None:
    """A bug in an adapter (not a ParseError) used to leave the lead received, re-queued for ever."""
    from leadrelay.adapters import canonical as canonical_adapter

    def broken(*args: object, **kwargs: object) -> object:
        raise KeyError("a field the adapter did not expect")

    monkeypatch.setattr(canonical_adapter.CanonicalAdapter, "parse", broken)
    lead_id = ingest(runtime, canonical())
    for _ in range(runtime.settings.max_unfinished_runs):
        with pytest.raises(KeyError):
            process(runtime, lead_id, owner="w")  # the task fails; the sweeper brings it back
        assert lead(runtime, lead_id).state == LeadState.received
    assert process(runtime, lead_id, owner="w") == "dead"
    [letter] = dead_letters(runtime, lead_id)
    assert letter.reason == "parse_error"
    assert "KeyError" in letter.message and "5 times" in letter.message


def test_copies_of_one_message_are_not_counted_as_failed_readings(runtime, sandbox) -> None:
    """Twelve workers handed the same lead at once: one reads it, the rest leave it alone."""
    lead_id = ingest(runtime, canonical())
    outcomes = at_once(lambda n=n: process(runtime, lead_id, owner=f"w{n}") for n in range(12))
    assert sorted(outcomes) == ["delivered"] + ["skipped"] * 11
    assert lead(runtime, lead_id).state == LeadState.delivered
    assert lead(runtime, lead_id).unfinished_runs == 0


def test_an_address_too_long_for_the_ledger_is_a_parse_error_not_a_loop(runtime) -> None:
    lead_id = ingest(runtime, canonical(contact={"full_name": "Long", "email": "a" * 330 + "@example.com"}))
    assert process(runtime, lead_id, owner="w") == "dead"
    [letter] = dead_letters(runtime, lead_id)
    assert letter.reason == "parse_error"
    assert "254 characters" in letter.message


def test_a_delivery_that_never_finishes_becomes_an_internal_dead_letter(
    runtime, sandbox, monkeypatch
) -> None:
    """Its process dies (or a bug escapes) mid-delivery every time: the lease runs out, again and again."""
    lead_id = ingest(runtime, canonical())

    def crash(*args: object, **kwargs: object) -> object:
        raise MemoryError()  # what a killed worker would never get to say

    monkeypatch.setattr("leadrelay.worker.delivery.flow.Delivery.run", crash)
    for _ in range(runtime.settings.max_unfinished_runs):
        with pytest.raises(MemoryError):
            process(runtime, lead_id, owner="w")
        expire_lease(runtime, lead_id)
    monkeypatch.undo()
    assert process(runtime, lead_id, owner="w") == "dead"
    [letter] = dead_letters(runtime, lead_id)
    assert letter.reason == "internal"
    assert "MemoryError" in letter.message
    assert sandbox.opportunities() == []


def test_erasure_waits_for_an_in_flight_create_and_lists_what_it_made(runtime, sandbox) -> None:
    """Erasing while a create is on its way must not leave that opportunity unrecorded."""
    from leadrelay.worker.erasure import InFlight, erase_when_idle

    sandbox.add_fault("delay", method="POST", path_regex="crmopportunities$", seconds=1.0)
    lead_id = ingest(runtime, canonical())
    worker = threading.Thread(target=lambda: process(runtime, lead_id, owner="w"))
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while not [a for a in attempts(runtime, lead_id) if a.call == "opportunity.create" and not a.outcome]:
            assert time.monotonic() < deadline, "the create was never sent"
            time.sleep(0.02)
        email = canonical()["contact"]["email"]
        with pytest.raises(InFlight):
            erase_when_idle(runtime.sessions, email, actor="test:dpo", wait_seconds=0)
        report = erase_when_idle(runtime.sessions, email, actor="test:dpo", wait_seconds=30)
    finally:
        worker.join()
    [opportunity] = sandbox.opportunities()
    assert [record.opportunity_id for record in report.in_nexudus] == [opportunity["Id"]]
    assert lead(runtime, lead_id).state == LeadState.delivered  # delivered first, then purged
    assert lead(runtime, lead_id).purged_why == "erasure"


@pytest.fixture
def api(sandbox) -> Iterator[NexudusClient]:
    client = NexudusClient(
        account="main",
        base_url=sandbox.base_url,
        username=SANDBOX_USERNAME,
        password=SecretStr(SANDBOX_PASSWORD),
        timeout=5.0,
    )
    yield client
    client.close()


def test_a_lookup_compares_whole_names_on_every_page(api: NexudusClient) -> None:
    """``Broker 1`` must be found behind 150 ``Broker 1…`` that the Name filter also matches."""
    coworker = api.create_coworker(coworker_body()).value
    for n in range(100, 250):
        assert api.create_opportunity(opportunity_body(coworker, Name=f"Broker {n}")).ok
    target = api.create_opportunity(opportunity_body(coworker, Name="Broker 1")).value
    assert api.find_opportunity("Broker 1").value["Id"] == target
    assert api.find_opportunity("Broker 2").value is None
    assert api.find_opportunity("Broker 10").value is None  # a prefix of many, the name of none


def test_system_id_first_then_the_name_only_for_a_record_without_one(api: NexudusClient) -> None:
    coworker = api.create_coworker(coworker_body()).value
    renamed = api.create_opportunity(opportunity_body(coworker, Name="Staff's name", SystemId="lr:a")).value
    other = api.create_opportunity(opportunity_body(coworker, Name="Broker b", SystemId="lr:other")).value
    untagged = api.create_opportunity(opportunity_body(coworker, Name="Broker c")).value
    api.create_opportunity(opportunity_body(coworker, Name="Broker x", SystemId="lr:a-longer"))

    assert api.find_opportunity("Broker a", "lr:a").value["Id"] == renamed  # not "lr:a-longer"
    assert api.find_opportunity("Broker b", "lr:b").value is None  # its Name, another enquiry's SystemId
    assert api.find_opportunity("Broker b", "lr:other").value["Id"] == other
    assert api.find_opportunity("Broker c", "lr:c").value["Id"] == untagged  # made before SystemIds
    assert api.find_opportunity("Broker d", "lr:d").value is None


@pytest.mark.parametrize(
    "where",
    ["leadrelay.worker.delivery.notes.first_introduction", "leadrelay.worker.delivery.flow.resolve_route"],
)
def test_a_bug_before_the_first_call_is_retried_as_one_in_the_calls(
    runtime, sandbox, monkeypatch, where
) -> None:
    """The reads ride in the claim's transaction: a bug there keeps the claim, sends nothing, retries."""

    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("a bug")

    monkeypatch.setattr(where, broken)
    lead_id = ingest(runtime, canonical())
    coworkers = len(sandbox.coworkers())
    outcome = process(runtime, lead_id, owner="w")
    row = lead(runtime, lead_id)
    assert (outcome, row.state, row.attempts) == ("retry", LeadState.normalised, 1)
    assert row.last_error == "internal error: RuntimeError" and row.lease_owner is None
    assert sandbox.opportunities() == [] and len(sandbox.coworkers()) == coworkers  # nothing sent
    monkeypatch.undo()
    make_due(runtime, lead_id)
    assert process(runtime, lead_id, owner="w") == "delivered"
    assert len(sandbox.opportunities()) == 1


def test_a_database_error_in_the_reads_claims_again_with_the_reads_apart(
    runtime, sandbox, monkeypatch
) -> None:
    """It aborts the claim's transaction: the claim again alone, so that the run is counted, not lost."""

    def broken(*args: object, **kwargs: object) -> object:
        raise DataError("SELECT", {}, Exception("a statement the ledger refuses"))

    monkeypatch.setattr("leadrelay.worker.delivery.notes.first_introduction", broken)
    lead_id = ingest(runtime, canonical())
    for run in range(1, runtime.settings.max_unfinished_runs + 1):
        with pytest.raises(DataError):
            process(runtime, lead_id, owner="w")
        row = lead(runtime, lead_id)
        assert (row.state, row.unfinished_runs) == (LeadState.delivering, run)
        expire_lease(runtime, lead_id)
    assert process(runtime, lead_id, owner="w") == "dead"  # counted each time: it ends, it does not loop
    [letter] = dead_letters(runtime, lead_id)
    assert letter.reason == "internal" and "from the ledger" in letter.message
    assert sandbox.opportunities() == []


def test_a_settling_that_postgres_lost_is_found_again_not_made_twice(runtime, sandbox, monkeypatch) -> None:
    """The settling's commit does not wait for the disk: a crash of Postgres may take it back.

    What the crash leaves is what a worker killed before its settling leaves: the lead being
    delivered under the lost run's lease (here run out long ago, past the create's landing
    wait), the run counted as unfinished, the create's mark and its attempt row on disk, the
    create's outcome (it rode in the settling) not.
    """
    lead_id = ingest(runtime, canonical(external_id="settle-lost"))
    with monkeypatch.context() as patch:
        patch.setattr(policy, "_settled", lambda *_, **__: True)  # "committed", then lost
        assert process(runtime, lead_id, owner="w") == "delivered"
    [made] = sandbox.opportunities()
    assert lead(runtime, lead_id).state == LeadState.delivering
    assert attempts(runtime, lead_id)[-1].finished_at is None
    with transaction(runtime.sessions) as session:
        session.execute(
            update(Lead).where(Lead.id == lead_id).values(create_sent_at=utcnow() - timedelta(hours=1))
        )
    expire_lease(runtime, lead_id)
    assert settle(runtime, lead_id, owner="w2") == "delivered"
    assert lead(runtime, lead_id).opportunity_id == made["Id"]  # the one the lost run made
    assert len(sandbox.opportunities()) == 1
    assert attempts(runtime, lead_id)[-1].call == "opportunity.find"  # looked, did not create
