"""Leases on the ledger's clock: claiming a lead to deliver, to read, renewing before each request.

Each is one guarded UPDATE, prebuilt per database kind (:func:`leadrelay.statements.per_dialect`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    and_,
    bindparam,
    case,
    false,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from leadrelay.driver import Step, Unit, as_unit
from leadrelay.ledger.dbclock import clock_params, lease_end, now_param
from leadrelay.ledger.introduced import Person, first_introduction, locking, person_params
from leadrelay.ledger.records import start_attempt
from leadrelay.ledger.side_writes import SideWrite, carried
from leadrelay.models import DeliveryAttempt, Lead, LeadState
from leadrelay.statements import checked, per_dialect, unflushed

_LEAD_COLUMNS = Lead.__table__.c


def state_is(state: LeadState) -> ColumnElement[bool]:
    """``state`` written into the SQL, not bound, for a statement that reads by account and state.

    A prepared statement's generic plan does not know a bound state: to it, it may be the
    commonest, ``delivered``, which is every lead the account ever had, and it reads them
    all (a sequential scan). Written in, it is an index condition on (account, state, …),
    and the planner knows how few rows it asks for (bench/PROFILE.md, nineteenth pass).
    """
    return Lead.state == literal_column(f"'{state.value}'")


def delivering(account: Any, now: Any) -> ColumnElement[bool]:
    """The account's leads being delivered now: leased, the lease not yet over."""
    return and_(Lead.account == account, state_is(LeadState.delivering), Lead.lease_until >= now)


def claimable(now: Any) -> ColumnElement[bool]:
    """Due to be claimed for delivery: normalised and due, or its delivery's lease is over."""
    return or_(
        (Lead.state == LeadState.normalised) & (Lead.next_attempt_at <= now),
        (Lead.state == LeadState.delivering) & (Lead.lease_until < now),
    )


@dataclass(frozen=True, slots=True)
class LeadRecord:
    """A lead as its delivery reads it, once, from the claim (the columns it needs, no ORM object)."""

    id: int
    channel: str
    external_id: str | None
    received_at: datetime
    lead: dict[str, Any] | None
    fingerprint: str | None
    identity: str | None
    location: str | None
    account: str | None
    attempts: int
    unfinished_runs: int  # delivery runs started without finishing, this one included
    last_error: str | None
    duplicate_of: int | None
    follow_up: dict[str, Any] | None
    first_introduction: int | None
    create_sent_at: datetime | None
    opportunity_name: str | None
    system_id: str | None
    # the claim decided the first introduction under the person's lock (``first_introduction``
    # is that decision): no need to decide again (see claiming())
    decided: bool = False


_RECORD = tuple(_LEAD_COLUMNS[f.name] for f in fields(LeadRecord) if f.name != "decided")
# the person the caller locked is the lead's, and the lead is one that takes part (a follow-up
# or a twin never does: their delivery never decides)
_DECIDES = and_(
    Lead.identity == bindparam("_identity"),
    Lead.location == bindparam("_location"),
    Lead.follow_up.is_(None),
    Lead.duplicate_of.is_(None),
)


def _claim_statement(postgres: bool, *, of_account: bool, gated: bool, decides: bool = False) -> Any:
    now = now_param(postgres)
    account = bindparam("_account", type_=_LEAD_COLUMNS["account"].type)
    guards = [claimable(now)]
    if of_account:  # the account the caller gated the claim on: still the lead's
        guards.append(Lead.account == account)
    stmt = update(Lead).where(Lead.id == bindparam("_id"), checked(*guards))
    if gated:  # the account has room: counted in the same statement (after the caller's lock)
        in_flight = select(func.count()).where(delivering(account, now)).scalar_subquery()
        stmt = stmt.where(in_flight < bindparam("_capacity", type_=Integer()))
    if postgres:  # its commit does not wait for the disk: see claiming()
        stmt = unflushed(stmt)
    values: dict[str, Any] = {
        "state": LeadState.delivering,
        "state_changed_at": now,
        "lease_owner": bindparam("_owner", type_=_LEAD_COLUMNS["lease_owner"].type),
        "lease_until": lease_end(postgres),
        "unfinished_runs": Lead.unfinished_runs + 1,
    }
    decided: Any = false()
    if decides:  # the first introduction, decided in the statement (a first one points at itself)
        found = first_introduction(nested=True).scalar_subquery()
        values["first_introduction"] = case(
            (_DECIDES, func.coalesce(found, Lead.id)), else_=Lead.first_introduction
        )
        decided = _DECIDES
    # the row as the UPDATE left it: what delivery reads, no ORM object
    return stmt.values(values).returning(*_RECORD, decided)


# keyed by (checks the account, checks its room, decides the first introduction)
_CLAIMS = {
    (of_account, gated, decides): per_dialect(
        partial(_claim_statement, of_account=of_account, gated=gated, decides=decides)
    )
    for of_account in (False, True)
    for gated in (False, True)
    for decides in (False, True)
}


def claim(
    session: Session | Unit,
    lead_id: int,
    *,
    first: Sequence[Step] = (),
    person: Person | None = None,
    **terms: Any,
) -> LeadRecord | None:
    """:func:`claiming`, run now: the leased row, or None.

    ``first``: the caller's statements to run before it (the account's room lock,
    ``worker.dispatch.holding_room``). With a ``person`` (Postgres), the person's lock
    comes after them and before the claim: the account's room, then the person's,
    the order every taker keeps. All go out together, in one round trip after the
    transaction's ``BEGIN`` (``Unit.execute_together``); the first that fails stops
    the rest.
    """
    work = as_unit(session)
    if not work.postgres:
        person = None  # SQLite serialises anyway: decided after the claim, as ever
    steps = [*first, *([locking(person.identity, person.location)] if person is not None else [])]
    return claimed(work.execute_together([*steps, claiming(lead_id, person=person, **terms)]))


def claiming(
    lead_id: int,
    *,
    owner: str,
    lease_seconds: int,
    account: str | None = None,
    room: tuple[str, int] | None = None,
    person: Person | None = None,
) -> tuple[Any, dict[str, Any]]:
    """The claim's statement and values: it leases a lead for delivery, due and normalised, or
    abandoned by a dead worker (:func:`claimed` reads its rows).

    It returns the leased row as it now stands (read in the same round trip; its
    ``unfinished_runs`` counts the delivery runs started without finishing, this
    one included), or nothing when the lead was not ours to take. ``account``: only
    if the lead still belongs to this account (the one whose capacity the caller
    checked); otherwise None, and a later pass claims it under its own account.
    ``room``: (account, capacity): only while fewer than ``capacity`` of that
    account's leads are being delivered (the caller holds the account's room lock).
    ``person`` (Postgres only): the lead's person, whose lock the caller took in this
    transaction before the claim (:func:`~leadrelay.ledger.introduced.locking`). The claim then
    also decides the lead's first introduction and writes it (``decided``), as
    ``introductions.relate`` would after it: the statement's snapshot is taken
    after the lock, so it sees every decision made before, and the lead's row is
    written once, not twice. A lead whose person is not that one (edited since
    the caller read it), a follow-up or a twin is claimed undecided.

    A claim that takes the lead commits without waiting for the disk, and so does
    the transaction it runs in (:data:`leadrelay.statements.UNFLUSHED_CLAUSE`): the
    attempt statement before the delivery's first write to Nexudus is flushed, and
    this claim with it. If a crash of Postgres loses the claim, the run's lease is
    gone and that statement refuses the request (leases are this run's alone); the
    lead is due again, the run not counted.
    """
    params = {"_id": lead_id, "_owner": owner, "_account": account, **clock_params(lease_seconds)}
    if room is not None:
        params["_account"], params["_capacity"] = room
        if account is not None and account != room[0]:
            raise ValueError("a claim gated on one account's room must not name another account")
    if person is not None:
        params.update(person_params(person))
    return _CLAIMS[(account is not None, room is not None, person is not None)], params


def claimed(rows: Sequence[Sequence[Any]]) -> LeadRecord | None:
    """The lead a claim leased, or None."""
    return LeadRecord(*rows[0]) if rows else None  # ``decided`` last, as RETURNING has it


@per_dialect
def _reading_statement(postgres: bool) -> Any:
    now = now_param(postgres)
    return (
        update(Lead)
        .where(
            Lead.id == bindparam("_id"),
            checked(
                Lead.state == LeadState.received, or_(Lead.lease_until.is_(None), Lead.lease_until < now)
            ),
        )
        .values(
            unfinished_runs=Lead.unfinished_runs + 1,
            lease_owner=bindparam("_owner", type_=_LEAD_COLUMNS["lease_owner"].type),
            lease_until=lease_end(postgres),
        )
        .returning(Lead.unfinished_runs, Lead.last_error, Lead.channel)
    )


@dataclass(frozen=True, slots=True)
class Reading:
    runs: int  # readings started and not finished, this one included
    last_error: str | None
    channel: str


def start_reading(session: Session | Unit, lead_id: int, *, owner: str, lease_seconds: int) -> Reading | None:
    """Lease a ``received`` lead to read it, counting the reading; None: read already, or being read.

    Its commit waits for the disk (the reading's own does not): the count is what
    dead-letters a lead whose reading brings Postgres itself down, so a crash of
    Postgres must not take it back.
    """
    params = {"_id": lead_id, "_owner": owner, **clock_params(lease_seconds)}
    rows = as_unit(session).execute(_reading_statement, params)
    return Reading(*rows[0]) if rows else None


@dataclass(frozen=True, slots=True)
class CreateTag:
    """How Nexudus will know the opportunity a create is about to make."""

    name: str
    system_id: str


# held for delivery by the run that renews: checked on the lead its id found
_HELD = (Lead.state == LeadState.delivering, Lead.lease_owner == bindparam("_owner"))


def _renewal(postgres: bool, *, creating: bool) -> Any:
    values: dict[str, Any] = {"lease_until": lease_end(postgres)}
    if creating:
        values.update(
            create_sent_at=now_param(postgres),
            opportunity_name=bindparam("_name", type_=_LEAD_COLUMNS["opportunity_name"].type),
            system_id=bindparam("_system_id", type_=_LEAD_COLUMNS["system_id"].type),
        )
    return update(Lead).where(Lead.id == bindparam("_id"), checked(*_HELD)).values(values)


_RENEW = per_dialect(lambda postgres: _renewal(postgres, creating=False))
_RENEW_CREATING = per_dialect(lambda postgres: _renewal(postgres, creating=True))


def renew_lease(
    session: Session | Unit,
    lead_id: int,
    *,
    owner: str,
    lease_seconds: int,
    creating: CreateTag | None = None,
) -> bool:
    """Extend our lease to ``lease_seconds`` from now; False: another worker has taken the lead over.

    ``creating``: a create is about to be sent — the lead records, in the same
    statement, that one may have happened (now) and under which Name and SystemId.
    """
    params = {"_id": lead_id, "_owner": owner, **clock_params(lease_seconds)}
    if creating is not None:
        params.update(_name=creating.name, _system_id=creating.system_id)
    stmt = _RENEW if creating is None else _RENEW_CREATING
    return as_unit(session).execute(stmt, params).rowcount == 1


def _renewal_with_attempt(*, creating: bool, flushed: bool = True) -> Any:
    """Postgres: the renewal and, only if it renewed, the request's attempt row — one statement."""
    renewal = _renewal(True, creating=creating)
    renewed = (renewal if flushed else unflushed(renewal)).returning(Lead.id).cte("renewed")
    columns = DeliveryAttempt.__table__.c
    started = select(
        renewed.c.id,
        bindparam("_call", type_=columns["call"].type),
        now_param(True),
    )
    return (
        insert(DeliveryAttempt)
        .from_select(["lead_id", "call", "started_at"], started)
        .returning(DeliveryAttempt.id)
    )


_RENEW_ATTEMPT = _renewal_with_attempt(creating=False)
_RENEW_ATTEMPT_CREATING = _renewal_with_attempt(creating=True)
_RENEW_ATTEMPT_UNFLUSHED = _renewal_with_attempt(creating=False, flushed=False)


def renew_lease_and_start_attempt(
    session: Session | Unit,
    lead_id: int,
    call: str,
    *,
    owner: str,
    lease_seconds: int,
    creating: CreateTag | None = None,
    side_writes: Sequence[SideWrite] = (),
    flushed: bool = True,
) -> int | None:
    """:func:`renew_lease` before a request, and the request's attempt row (its id; None: the lead is lost).

    On Postgres one round trip: the INSERT reads the renewal's RETURNING, so the row
    exists only if the lease was ours, and ``side_writes`` ride in the same statement
    (written whether or not the lease was ours, as they would be in the caller's
    transaction); elsewhere each is a statement in the caller's transaction.

    ``flushed=False``, for a request that changes nothing in Nexudus (a lookup): on
    Postgres the statement commits without waiting for the disk — and, in a
    transaction, that transaction too (:data:`leadrelay.statements.UNFLUSHED_CLAUSE`).
    A create's is always flushed: it is the record that one may have been sent.
    """
    work = as_unit(session)
    if not work.postgres:
        for write in side_writes:
            write(work)
        renewed = renew_lease(work, lead_id, owner=owner, lease_seconds=lease_seconds, creating=creating)
        return start_attempt(work, lead_id, call) if renewed else None
    params: dict[str, Any] = {"_id": lead_id, "_owner": owner, "_call": call, **clock_params(lease_seconds)}
    stmt = _RENEW_ATTEMPT if flushed else _RENEW_ATTEMPT_UNFLUSHED
    if creating is not None:
        params.update(_name=creating.name, _system_id=creating.system_id)
        stmt = _RENEW_ATTEMPT_CREATING
    if side_writes:
        stmt, params = carried(stmt, params, side_writes)
    rows = work.execute(stmt, params)
    return int(rows[0][0]) if rows else None


_RESTORE_CREATE_SENT = (
    update(Lead)
    .where(Lead.id == bindparam("_id"), checked(*_HELD))
    .values(create_sent_at=bindparam("_sent", type_=_LEAD_COLUMNS["create_sent_at"].type))
)


def restore_create_sent(
    session: Session | Unit, lead_id: int, *, owner: str, sent_at: datetime | None
) -> None:
    """A create was answered with a definite refusal: what may have happened is what did before it."""
    params = {"_id": lead_id, "_owner": owner, "_sent": sent_at}
    as_unit(session).execute(_RESTORE_CREATE_SENT, params)
