"""Writes beside the lead's row ride in the statement that renews its lease or settles it (Postgres).

leadrelay.ledger.side_writes: an answered request's outcome and a coworker-cache entry
used to wait for a transaction of their own around the next renewal (BEGIN, a
statement each, the renewal, COMMIT); on Postgres they are now CTEs of that one
statement. What must stay true: each is written exactly as before, atomically with
the statement, also when the lease turns out lost; a lead's attempt rows keep their
call order (their ids; tests/delivery/test_delivery.py reads them so); and nothing
that touches the lead's own row is ever carried.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, bindparam, event, select, update
from sqlalchemy.orm import Session, sessionmaker

from leadrelay import ledger
from leadrelay.db import make_engine, make_session_factory, statement_commits, transaction
from leadrelay.ledger import SideWrite
from leadrelay.ledger.leases import _RENEW_ATTEMPT
from leadrelay.ledger.side_writes import carried
from leadrelay.models import CoworkerCache, DeliveryAttempt, Lead, LeadState
from leadrelay.runtime import Runtime
from leadrelay.statements import UNFLUSHED_CLAUSE
from leadrelay.worker import follow_ups
from leadrelay.worker.delivery.attempts import Hold
from leadrelay.worker.pipeline import process
from tests.conftest import fresh_ledger
from tests.helpers import canonical, ingest

# two writes of one statement name their parameters alike: carried together they must not mix
_OUTCOME = (
    update(DeliveryAttempt)
    .where(DeliveryAttempt.id == bindparam("_id"))
    .values(outcome=bindparam("v_outcome"), status_code=bindparam("v_status"))
)


class Statements:
    """The statements and commits an engine runs from now on."""

    def __init__(self, engine: Engine) -> None:
        self.sql: list[str] = []
        self.commits = 0
        event.listen(engine, "before_cursor_execute", lambda *a: self.sql.append(a[2]))
        event.listen(engine, "commit", self._commit)

    def _commit(self, *_: object) -> None:
        self.commits += 1


@pytest.fixture(params=["postgres", "sqlite"])
def sessions(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(fresh_ledger(request, tmp_path, request.param))
    yield make_session_factory(engine)
    engine.dispose()


def _leased(sessions: sessionmaker[Session], owner: str) -> tuple[int, list[int]]:
    """A lead being delivered under ``owner``'s lease, and two attempt rows of it, unfinished."""
    with transaction(sessions) as session:
        lead = Lead(channel="canonical", source="webhook", intake_key=f"side:{owner}", raw_body=b"{}")
        lead.raw_sha256 = "0" * 64
        session.add(lead)
        session.flush()
        session.execute(
            update(Lead)
            .where(Lead.id == lead.id)
            .values(state=LeadState.delivering, lease_owner=owner, lease_until=ledger.db_now(session))
        )
        attempts = [
            ledger.start_attempt(session, lead.id, call) for call in ("coworker.find", "coworker.create")
        ]
        return lead.id, attempts


def _outcomes(sessions: sessionmaker[Session], lead_id: int) -> dict[str, tuple[str | None, int | None]]:
    with sessions() as session:
        rows = session.execute(
            select(DeliveryAttempt.call, DeliveryAttempt.outcome, DeliveryAttempt.status_code).where(
                DeliveryAttempt.lead_id == lead_id
            )
        )
        return {call: (outcome, status) for call, outcome, status in rows}


def _renew(session: Session, lead_id: int, owner: str, writes: list[SideWrite]) -> int | None:
    return ledger.renew_lease_and_start_attempt(
        session, lead_id, "opportunity.create", owner=owner, lease_seconds=60, side_writes=writes
    )


def test_side_writes_ride_in_the_renewal_each_with_its_own_values(sessions: sessionmaker[Session]) -> None:
    lead_id, (found, created) = _leased(sessions, "A")
    writes = [
        SideWrite(_OUTCOME, {"_id": found, "v_outcome": "ok", "v_status": 200}),
        SideWrite(_OUTCOME, {"_id": created, "v_outcome": "unknown", "v_status": 504}),
    ]
    seen = Statements(sessions.kw["bind"])
    with statement_commits(sessions) as session:
        attempt = _renew(session, lead_id, "A", writes)
    statements = len(seen.sql)
    assert attempt is not None
    assert _outcomes(sessions, lead_id) == {
        "coworker.find": ("ok", 200),
        "coworker.create": ("unknown", 504),
        "opportunity.create": (None, None),  # the write's own row, started
    }
    if sessions.kw["bind"].dialect.name == "postgresql":
        assert statements == 1  # SQLite: each write, then the renewal and the attempt row


def test_side_writes_are_written_when_the_lease_is_lost(sessions: sessionmaker[Session]) -> None:
    """As in the transaction they used to ride in: the outcome of a request that was answered stays."""
    lead_id, (found, _) = _leased(sessions, "A")
    with statement_commits(sessions) as session:
        attempt = _renew(
            session, lead_id, "B", [SideWrite(_OUTCOME, {"_id": found, "v_outcome": "ok", "v_status": 200})]
        )
    assert attempt is None  # B never held the lease: no attempt row, and the caller stops (LostLease)
    assert _outcomes(sessions, lead_id) == {"coworker.find": ("ok", 200), "coworker.create": (None, None)}


def test_a_settling_carries_the_last_outcome(sessions: sessionmaker[Session]) -> None:
    lead_id, (found, _) = _leased(sessions, "A")
    write = SideWrite(_OUTCOME, {"_id": found, "v_outcome": "ok", "v_status": 201})
    with statement_commits(sessions) as session:
        moved = ledger.transition(
            session,
            lead_id,
            from_states=[LeadState.delivering],
            to=LeadState.delivered,
            owner="A",
            side_writes=[write],
        )
    assert moved
    assert _outcomes(sessions, lead_id)["coworker.find"] == ("ok", 201)
    with sessions() as session:
        assert session.get(Lead, lead_id).state == LeadState.delivered  # type: ignore[union-attr]


def test_what_cannot_ride_is_refused_when_built() -> None:
    """A write to the leads table, or a parameter that is not a plain named value: a ValueError."""
    lead_row = SideWrite(update(Lead).where(Lead.id == bindparam("_id")).values(last_error="x"), {"_id": 1})
    with pytest.raises(ValueError, match="never carried"):
        carried(_RENEW_ATTEMPT, {}, [lead_row])
    # other leads' rows ride when the write says so (its statement excludes the carrying lead's)
    woken = follow_ups.wake_write(1)
    assert woken.other_leads and carried(_RENEW_ATTEMPT, {"_id": 1}, [woken])[1]["w0__id"] == 1
    with pytest.raises(ValueError, match="never carried"):  # the same statement, unsaid: refused
        carried(_RENEW_ATTEMPT, {"_id": 1}, [SideWrite(woken.statement, woken.params)])
    with pytest.raises(ValueError, match="carrying statement's lead"):  # another lead's wake: refused
        carried(_RENEW_ATTEMPT, {"_id": 2}, [woken])
    listed = update(DeliveryAttempt).where(DeliveryAttempt.id.in_(bindparam("_ids", expanding=True)))
    with pytest.raises(ValueError, match="plain named values"):
        carried(_RENEW_ATTEMPT, {}, [SideWrite(listed.values(outcome="ok"), {"_ids": [1]})])


def test_a_write_to_the_leads_own_row_is_never_carried(runtime: Runtime) -> None:
    """Two updates of one row in one statement are not defined: the renewal then runs in a transaction."""
    hold = Hold(runtime, None, "A")  # type: ignore[arg-type]  # only the pending writes are used here
    attempt_row = SideWrite(_OUTCOME, {"_id": 1, "v_outcome": "ok", "v_status": 200})
    hold.later(attempt_row)
    hold.later(lambda session: ledger.restore_create_sent(session, 1, owner="A", sent_at=None))
    assert hold._side_writes_only() == []
    assert len(hold._pending) == 2  # left for the transaction, in order
    only_beside = Hold(runtime, None, "A")  # type: ignore[arg-type]
    only_beside.later(attempt_row)
    assert only_beside._side_writes_only() == [attempt_row]
    assert only_beside._pending == []


def test_a_delivery_renews_and_settles_in_single_statements(runtime: Runtime, pipelines: list[int]) -> None:
    """39 round trips a lead before (25 statements, 7 transactions), 18 now; every write still kept."""
    first = ingest(
        runtime,
        canonical(
            external_id="side-1",
            contact={"full_name": "Ada Side", "email": "ada@side.example", "company": "Side Works"},
        ),
    )
    assert process(runtime, first, owner="test", enqueue=len) == "delivered"  # the account's row, the login
    lead_id = ingest(runtime, canonical())
    seen = Statements(runtime.engine)
    pipelines.clear()
    assert process(runtime, lead_id, owner="test", enqueue=len) == "delivered"
    # the dedupe keys claimed in one statement; the reads before the first call ride in the claim's
    # transaction (the reading's, the claim's: two); the claim decides the first introduction itself;
    # the reading's move asks for the same company's leads in its own statement
    assert (len(seen.sql), seen.commits) == (16, 2)
    flat = [" ".join(sql.split()) for sql in seen.sql]
    (moving,) = [sql for sql in flat if sql.startswith("WITH moved AS (UPDATE leads")]
    assert "SELECT leads.id, leads.lead FROM leads WHERE leads.location =" in moving
    # the account's room lock (not its budget row), the person's lock and the claim go together,
    # in that order (the lock before the claim: its snapshot sees every decision made before)
    assert pipelines == [3]
    start = next(i for i, sql in enumerate(seen.sql) if sql.startswith("SELECT pg_advisory_xact_lock(7011"))
    assert [sql.split()[0:2] for sql in seen.sql[start : start + 3]] == [
        ["SELECT", "pg_advisory_xact_lock(7011,"],
        ["SELECT", "pg_advisory_xact_lock(%(a)s,"],
        ["UPDATE", "leads"],
    ]
    assert "first_introduction=CASE" in seen.sql[start + 2]
    assert not [sql for sql in seen.sql if "nexudus_accounts.account FROM" in sql and "FOR UPDATE" in sql]
    (claiming,) = [" ".join(sql.split()) for sql in seen.sql if "SET state=%(state)s" in sql]
    assert "first_introduction=CASE" in claiming
    assert not [sql for sql in seen.sql if sql.startswith("WITH first_introduction")]
    # the reading and the claim commit without waiting for the disk, each saying so in its own
    # statement, not by a SET LOCAL of its own (tests/delivery/test_unflushed.py)
    assert not [sql for sql in seen.sql if sql.startswith("SET LOCAL")]
    assert UNFLUSHED_CLAUSE in seen.sql[1] and seen.sql[1].startswith("SELECT leads.id")
    # the settling carries the last attempt's outcome and wakes the enquiry's follow-ups
    (settling,) = [" ".join(sql.split()) for sql in seen.sql if "UPDATE leads SET next_attempt_at=" in sql]
    assert settling.startswith("WITH w0 AS (UPDATE delivery_attempts") and "w1 AS (UPDATE leads" in settling
    assert ") UPDATE leads SET state=" in settling
    outcomes = _outcomes(runtime.sessions, lead_id)
    assert {call: outcome for call, (outcome, _) in outcomes.items()} == {
        "coworker.find": "ok",
        "coworker.create": "ok",
        "opportunity.create": "ok",
    }
    with runtime.sessions() as session:
        cached = session.scalars(select(CoworkerCache.email)).all()
    assert len(cached) == 2  # the second person's entry, carried by the opportunity's renewal
