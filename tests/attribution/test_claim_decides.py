"""The delivery's claim decides the first introduction of the person the reading just read."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import text, update

from leadrelay.db import transaction, utcnow
from leadrelay.driver import unit
from leadrelay.ledger.introduced import Person, locking
from leadrelay.models import Lead, LeadState
from leadrelay.runtime import Runtime
from leadrelay.worker.dispatch import Claim, Claimed, claim
from leadrelay.worker.pipeline import process, read
from tests.attribution.test_attribution import hubble, workthere
from tests.helpers import ingest, lead, settle, wait_for


def _claim(runtime: Runtime, lead_id: int, person: Person | None, *, account: str | None) -> Claimed:
    with unit(runtime.sessions) as work:
        return claim(
            work,
            lead_id,
            owner="run-1",
            lease_seconds=60,
            routing=runtime.routing,
            account=account,
            person=person,
        )


def test_the_claim_writes_the_decision_a_first_one_pointing_at_itself(runtime: Runtime) -> None:
    first = ingest(runtime, hubble(), channel="hubblehq")
    later = ingest(runtime, workthere(), channel="workthere")
    for lead_id in (first, later):
        read_ = read(runtime, lead_id, owner="run-1")
        assert read_.state is LeadState.normalised and read_.person is not None
        claimed = _claim(runtime, lead_id, read_.person, account=read_.account)
        assert claimed.status is Claim.claimed and claimed.row is not None
        assert claimed.row.decided
        # the first is the first (normalised or being delivered, the older); the later one points at it
        assert claimed.row.first_introduction == first == lead(runtime, lead_id).first_introduction


def test_a_person_edited_since_the_reading_is_claimed_undecided_and_decided_after(
    runtime: Runtime, sandbox
) -> None:
    first = ingest(runtime, hubble(), channel="hubblehq")
    assert settle(runtime, first) == "delivered"
    later = ingest(runtime, workthere(), channel="workthere")
    read_ = read(runtime, later, owner="run-1")
    assert read_.person is not None
    stale = Person("someone-else@example.com", read_.person.location, read_.person.since)
    claimed = _claim(runtime, later, stale, account=read_.account)
    assert claimed.row is not None and not claimed.row.decided
    assert lead(runtime, later).first_introduction is None  # not written by the claim
    # its lease given up as a dead worker's would run out: the next run decides after its claim
    with transaction(runtime.sessions) as session:
        session.execute(
            update(Lead).where(Lead.id == later).values(lease_until=utcnow() - timedelta(hours=1))
        )
    assert process(runtime, later, owner="run-2") == "attached"
    assert lead(runtime, later).first_introduction == first


def test_a_twin_is_never_decided_by_the_claim(runtime: Runtime) -> None:
    first = ingest(runtime, hubble(), channel="hubblehq")
    read_ = read(runtime, first, owner="run-1")
    assert read_.person is not None
    other = ingest(runtime, workthere(), channel="workthere")
    read(runtime, other, owner="run-1")
    with transaction(runtime.sessions) as session:  # as a twin read as a duplicate is
        session.execute(update(Lead).where(Lead.id == other).values(duplicate_of=first))
    claimed = _claim(runtime, other, read_.person, account=read_.account)
    assert claimed.row is not None and not claimed.row.decided
    assert lead(runtime, other).first_introduction is None


def test_the_claim_waits_for_the_persons_lock_and_sees_what_its_holder_decided(runtime: Runtime) -> None:
    """Another worker holds the person's lock and has marked a lead first: the claim waits, then sees it.

    Taken after its claim instead, the lock would let the claim decide on a snapshot that
    misses the mark: the older lead would decide itself first (the lowest id), a second first.
    """
    older = ingest(runtime, hubble(), channel="hubblehq")
    later = ingest(runtime, workthere(), channel="workthere")
    read_ = read(runtime, older, owner="run-1")
    assert read_.person is not None and read(runtime, later, owner="run-2").person is not None
    holder = runtime.engine.connect()
    transaction_ = holder.begin()
    holder.execute(*locking(read_.person.identity, read_.person.location))
    holder.execute(update(Lead).where(Lead.id == later).values(first_introduction=later))  # decided first
    claimed: list[Claimed] = []
    claiming = threading.Thread(
        target=lambda: claimed.append(_claim(runtime, older, read_.person, account=read_.account))
    )
    claiming.start()
    try:
        wait_for(lambda: _waiting_for_an_advisory_lock(runtime) == 1, timeout=10, what="the claim to wait")
        assert not claimed
    finally:
        transaction_.commit()
        holder.close()
        claiming.join(timeout=30)
    [done] = claimed
    assert done.row is not None and done.row.decided
    assert done.row.first_introduction == later  # the holder's decision, seen after its commit


def _waiting_for_an_advisory_lock(runtime: Runtime) -> int:
    with runtime.engine.connect() as conn:
        query = (
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'"
        )
        return int(conn.execute(text(query)).scalar_one())
