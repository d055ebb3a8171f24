"""Which leads go to the workers now: per account, no more than it can deliver.

Each Nexudus account delivers at most ``limits.concurrent_deliveries`` leads at
once (checked under the account's room lock, :func:`holding_room`). The rest wait in the ledger, not in
the broker and not in a worker slot, and are dispatched when a delivery of the
same account ends or the sweeper passes. So one account's backlog occupies a
few worker slots at most, and another account's leads are never stuck behind it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from functools import partial
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Interval,
    and_,
    any_,
    bindparam,
    case,
    func,
    or_,
    select,
    text,
    union,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from leadrelay import ledger
from leadrelay.db import utcnow
from leadrelay.driver import Step, Unit, as_unit, unit
from leadrelay.ledger.introduced import Person
from leadrelay.models import Lead, LeadState
from leadrelay.nexudus.budget import holding_account
from leadrelay.routing import Routing
from leadrelay.runtime import Runtime
from leadrelay.statements import checked, per_dialect
from leadrelay.unit_of_work import Publish, unit_of_work

Enqueue = Publish
UNGATED_BATCH = 500


class Claim(StrEnum):
    claimed = "claimed"
    busy = "busy"  # the account is delivering as many leads as it may
    not_due = "not_due"  # delivered, leased by someone else, or not yet due


@dataclass(frozen=True, slots=True)
class Claimed:
    status: Claim
    row: ledger.LeadRecord | None = None  # the leased lead (claimed): its unfinished_runs counts this run too


# an advisory lock's two keys: the room's namespace (the person's lock is 7012), the account's hash
_ROOM_LOCK = text("SELECT pg_advisory_xact_lock(7011, hashtext(:_account))")


def holding_room(postgres: bool, account: str) -> list[Step]:
    """The account's room locked until the transaction ends: its claims and dispatches take turns.

    On Postgres an advisory lock of its own, not the account's budget row: every
    Nexudus request's reservation updates that row, and a claim holding it through
    its round trips (``BEGIN``, the claim, ``COMMIT``) kept the other workers'
    reservations waiting (bench/PROFILE.md, twenty-ninth pass). Taken before the
    person's lock wherever both are taken. Elsewhere (SQLite, which lets one writer
    in at a time) the account's budget row, made if missing: a write, which takes
    the database's write lock for the rest of the transaction.
    """
    return [(_ROOM_LOCK, {"_account": account})] if postgres else holding_account(account)


def _capacity(routing: Routing, account: str | None) -> int | None:
    if account is None or account not in routing.accounts:
        return None  # no account: delivery will dead-letter it (routing) without calling Nexudus
    return routing.accounts[account].limits.concurrent_deliveries


# Each condition below is one per state, and a query asks each state apart (a UNION, or a
# count each): an equality on the state is an index condition on (account, state, …), so
# a dispatch reads the account's live leads only. An OR of two states is none: the
# planner's generic plan read every lead the account ever had, twice, after every
# delivery (bench/PROFILE.md, nineteenth pass; tests/delivery/test_dispatch_reads.py).
def _waiting_in(state: LeadState, now: Any, stale: Any) -> ColumnElement[bool]:
    """Due, and not handed to a worker recently (before ``stale``), or its message was lost."""
    if state is LeadState.normalised:
        return and_(
            ledger.state_is(LeadState.normalised),
            Lead.next_attempt_at <= now,
            or_(
                Lead.enqueued_at.is_(None), Lead.enqueued_at < Lead.next_attempt_at, Lead.enqueued_at < stale
            ),
        )
    return and_(
        ledger.state_is(LeadState.delivering),
        Lead.lease_until < now,
        or_(Lead.enqueued_at.is_(None), Lead.enqueued_at < Lead.lease_until, Lead.enqueued_at < stale),
    )


_WAITING_STATES = (LeadState.normalised, LeadState.delivering)


def _taken(now: Any, stale: Any) -> Any:
    """The account's leads being delivered, or sent to a worker since ``stale`` and not claimed yet."""
    recent = Lead.enqueued_at >= stale
    handed = select(func.count()).where(
        Lead.account == _ACCOUNT,
        ledger.state_is(LeadState.normalised),
        recent,
        Lead.enqueued_at >= Lead.next_attempt_at,
    )
    delivering = select(func.count()).where(
        Lead.account == _ACCOUNT,
        ledger.state_is(LeadState.delivering),
        or_(Lead.lease_until >= now, and_(recent, Lead.enqueued_at >= Lead.lease_until)),
    )
    return handed.scalar_subquery() + delivering.scalar_subquery()


# Built once per database kind (they run after every delivery): now is the ledger's
# clock, ``_stale`` is now minus the grace period (``_grace`` on Postgres, bound on SQLite).
def _clock(postgres: bool) -> tuple[Any, Any]:
    now = ledger.now_param(postgres)
    if postgres:
        return now, now - bindparam("_grace", type_=Interval())
    return now, bindparam("_stale", type_=_LEAD_COLUMNS["enqueued_at"].type)


_LEAD_COLUMNS = Lead.__table__.c
_ACCOUNT_OF = select(Lead.account).where(Lead.id == bindparam("_id"))
_ACCOUNT = bindparam("_account", type_=_LEAD_COLUMNS["account"].type)


def _back_to_waiting(postgres: bool, *, of_account: bool) -> Any:
    """A lead the claim would have taken but for the account's room: a normalised one waits again.

    The claim's own conditions but its room, so a row here means "busy": decided by the
    row, under the account's room lock, without counting the leads in flight a second time.
    """
    guards = [ledger.claimable(ledger.now_param(postgres))]
    if of_account:
        guards.append(Lead.account == _ACCOUNT)
    stmt = update(Lead).where(Lead.id == bindparam("_id"), checked(*guards))
    # the next dispatch of the account hands it out (an abandoned delivery keeps its mark)
    waiting = case((Lead.state == LeadState.normalised, None), else_=Lead.enqueued_at)
    return stmt.values(enqueued_at=waiting).execution_options(synchronize_session=False)


_BACK_TO_WAITING = {
    of_account: per_dialect(partial(_back_to_waiting, of_account=of_account)) for of_account in (False, True)
}


def _due(postgres: bool, *, of_account: bool, gated: bool) -> Any:
    """The account's waiting leads, oldest due first; ``gated``: no more than its free capacity.

    The free capacity (``_capacity`` minus the leads being delivered or handed out) is
    counted in the same statement, after the account's room lock: one round trip, not two.
    """
    now, stale = _clock(postgres)
    owned = Lead.account == _ACCOUNT if of_account else Lead.account.is_(None)
    room: Any = bindparam("_room", type_=Integer())
    if gated:
        # a LIMIT must not be negative (SQLite reads a negative one as no limit at all)
        free = bindparam("_capacity", type_=Integer()) - _taken(now, stale)
        room = (func.greatest if postgres else func.max)(free, 0)
    waiting = union_all(
        *(
            select(Lead.id, Lead.next_attempt_at).where(owned, _waiting_in(s, now, stale))
            for s in _WAITING_STATES
        )
    ).subquery("waiting")
    return select(waiting.c.id).order_by(waiting.c.next_attempt_at, waiting.c.id).limit(room)


_DUE_GATED = per_dialect(lambda pg: _due(pg, of_account=True, gated=True))
_DUE = per_dialect(lambda pg: _due(pg, of_account=True, gated=False))
_DUE_NO_ACCOUNT = per_dialect(lambda pg: _due(pg, of_account=False, gated=False))
_HANDED = per_dialect(
    lambda pg: (
        update(Lead)
        # Postgres: the ids as one array (an IN list is compiled anew for each length)
        .where(
            Lead.id == any_(bindparam("_ids", type_=postgresql.ARRAY(BigInteger())))
            if pg
            else Lead.id.in_(bindparam("_ids", expanding=True))
        )
        .values(enqueued_at=ledger.now_param(pg))
        .execution_options(synchronize_session=False)
    )
)


def _clock_params(grace: timedelta) -> dict[str, Any]:
    at = utcnow()
    return {"_at": at, "_grace": grace, "_stale": at - grace}


def claim(
    session: Session | Unit,
    lead_id: int,
    *,
    owner: str,
    lease_seconds: int,
    routing: Routing,
    account: str | None = None,
    person: Person | None = None,
) -> Claimed:
    """Lease a lead for delivery if it is due and its account has room.

    ``account``: the lead's, when the caller has just routed it (saves reading it
    back). The claim then also checks that it still is: if not, nothing is claimed
    and the sweeper's next pass hands the lead out again, read afresh. ``person``:
    the lead's, when the caller has just read it: its lock is taken (after the
    account's, as the delivery's reads take it) and the claim decides the lead's
    first introduction (:func:`leadrelay.ledger.claim`).
    """
    hinted, work = account is not None, as_unit(session)
    if account is None:
        found = work.execute(_ACCOUNT_OF, {"_id": lead_id})
        account = found[0][0] if found else None
    capacity = _capacity(routing, account)
    room = None if account is None or capacity is None else (account, capacity)
    row = ledger.claim(
        work,
        lead_id,
        first=holding_room(work.postgres, room[0]) if room is not None else (),  # locked first
        person=person,
        lease_seconds=lease_seconds,
        owner=owner,
        account=account if hinted else None,
        room=room,  # the account's room is counted by the claim itself, under the lock
    )
    if row is not None:
        return Claimed(Claim.claimed, row)
    if room is not None:
        params = {"_id": lead_id, "_account": room[0], "_at": utcnow()}
        if work.execute(_BACK_TO_WAITING[hinted], params).rowcount:
            return Claimed(Claim.busy)
    return Claimed(Claim.not_due)


def dispatch(rt: Runtime, account: str | None, *, enqueue: Enqueue) -> int:
    """Hand an account's waiting leads to the workers, up to its free capacity."""
    params = _clock_params(timedelta(seconds=rt.settings.requeue_after_seconds))
    with unit_of_work(rt, publish=enqueue) as uow:
        work = uow.work  # prebuilt statements: no session
        capacity = _capacity(rt.routing, account)
        locks: list[Step] = []
        if account is not None and capacity is not None:
            locks = holding_room(work.postgres, account)  # sent with the question, which counts after it
            due, params = _DUE_GATED, {**params, "_account": account, "_capacity": capacity}
        else:
            due = _DUE if account is not None else _DUE_NO_ACCOUNT
            params = {**params, "_account": account, "_room": UNGATED_BATCH}
        ids = [row[0] for row in work.execute_together([*locks, (due, params)])]
        if ids:
            work.execute(_HANDED, {"_ids": ids, "_at": params["_at"]})
            uow.enqueue(*ids)
    return uow.published


def dispatch_waiting(rt: Runtime, account: str, *, enqueue: Enqueue, refused: bool = False) -> int:
    """After a delivery, or a refusal for want of room: :func:`dispatch`, if it would hand a lead out.

    One statement that commits by itself asks first, with no lock and no
    transaction: is a lead due? After nearly every delivery nothing waits, and the
    dispatch's lock is not taken. A delivery has (nearly always) just freed a slot,
    so it asks only whether a lead waits, and the dispatch counts the room under the
    lock; a ``refused`` claim's worker asks whether the account has
    room for it as well (the dispatch's own query, its room counted as under the
    lock): in one account's backlog most claims are refused, and nearly always
    there is still no room. The question comes after the caller's commit, on both
    sides. A lead that another worker's claim refused while this delivery was in
    flight, and that this delivery's question misses (the refusal had not
    committed), is seen by that worker's own question after its commit, which sees
    this delivery's slot free: each side writes, then reads, and the one that reads
    second sees the other (:func:`leadrelay.worker.pipeline.process` asks after both).
    """
    params = {**_clock_params(timedelta(seconds=rt.settings.requeue_after_seconds)), "_account": account}
    capacity = _capacity(rt.routing, account)
    gated = refused and capacity is not None
    due, extra = (_DUE_GATED, {"_capacity": capacity}) if gated else (_DUE, {"_room": 1})
    with unit(rt.sessions, autocommit=True) as work:
        if not work.execute(due, {**params, **extra}):
            return 0
    return dispatch(rt, account, enqueue=enqueue)


def accounts_with_waiting_leads(session: Session, *, now: Any, grace: timedelta) -> list[str | None]:
    return list(session.execute(accounts_waiting(now, grace)).scalars())


def accounts_waiting(now: Any, grace: timedelta) -> Any:
    """The accounts with leads waiting (the sweeper asks it every pass)."""
    return union(*(select(Lead.account).where(_waiting_in(s, now, now - grace)) for s in _WAITING_STATES))


def account_of(rt: Runtime, lead_id: int) -> str | None:
    with rt.sessions() as session:
        return session.execute(select(Lead.account).where(Lead.id == lead_id)).scalar_one_or_none()
