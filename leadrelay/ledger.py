"""Ledger operations: intake, guarded state transitions, attempts, audit.

Every transition is one UPDATE whose WHERE clause states what must still be
true (the state, the lease owner); ``rowcount == 1`` means this caller won. No
function here commits: the request or task that calls them owns the transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, Interval, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ClauseElement

from leadrelay.db import insert_for, utcnow
from leadrelay.models import (
    AuditEntry,
    DeadLetter,
    DeadReason,
    DeliveryAttempt,
    Lead,
    LeadState,
    OpportunityLock,
)

RESPONSE_EXCERPT = 2000
CONTENT_TYPE_CHARS = 200  # leads.content_type: a sender's longer header is cut, never refused


@dataclass(frozen=True, slots=True)
class Intake:
    lead_id: int
    duplicate: bool  # the intake key was seen before: nothing new was stored


def record_inbound(
    session: Session,
    *,
    channel: str,
    source: str,
    intake_key: str,
    body: bytes,
    content_type: str | None,
    meta: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> Intake:
    """Store a raw inbound item once per intake key (a re-delivery is recognised)."""
    at = now or utcnow()
    stmt = (
        insert_for(session, Lead)
        .values(
            channel=channel,
            source=source,
            intake_key=intake_key,
            received_at=at,
            content_type=content_type[:CONTENT_TYPE_CHARS] if content_type else None,
            raw_body=body,
            raw_sha256=hashlib.sha256(body).hexdigest(),
            raw_meta=meta or {},
            state=LeadState.received,
            state_changed_at=at,
            attempts=0,
            next_attempt_at=at,
            enqueued_at=at,
        )
        .on_conflict_do_nothing(index_elements=["intake_key"])
        .returning(Lead.id)
    )
    new_id = session.execute(stmt).scalar_one_or_none()
    if new_id is not None:
        return Intake(lead_id=new_id, duplicate=False)
    existing = session.execute(select(Lead.id).where(Lead.intake_key == intake_key)).scalar_one()
    return Intake(lead_id=existing, duplicate=True)


def transition(
    session: Session,
    lead_id: int,
    *,
    from_states: Iterable[LeadState],
    to: LeadState,
    owner: str | None = None,
    now: datetime | None = None,
    **values: Any,
) -> bool:
    """Move a lead to ``to`` if it is still in one of ``from_states`` (and leased by ``owner``)."""
    at = now or utcnow()
    states = [s.value for s in from_states]
    if any(isinstance(v, ClauseElement) for v in values.values()):
        stmt = update(Lead).where(Lead.id == lead_id, Lead.state.in_(states))
        if owner is not None:
            stmt = stmt.where(Lead.lease_owner == owner)
        result = session.execute(
            stmt.values(state=to, state_changed_at=at, **values).execution_options(synchronize_session=False)
        )
        return result.rowcount == 1  # type: ignore[attr-defined]
    params = {f"v_{k}": v for k, v in values.items()}
    params.update(_id=lead_id, _from=states, _to=to, _at=at)
    if owner is not None:
        params["_owner"] = owner
    stmt = _transition_statement(owner is not None, tuple(values))
    return session.connection().execute(stmt, params).rowcount == 1


# The hot UPDATEs are built once with bound parameters and reused: building and
# cache-keying a new statement per call cost more CPU than the round trip itself.
_TRANSITIONS: dict[tuple[bool, tuple[str, ...]], Any] = {}
_LEAD_COLUMNS = Lead.__table__.c


def _transition_statement(guard_owner: bool, names: tuple[str, ...]) -> Any:
    key = (guard_owner, names)
    stmt = _TRANSITIONS.get(key)
    if stmt is None:
        stmt = update(Lead).where(
            Lead.id == bindparam("_id"), Lead.state.in_(bindparam("_from", expanding=True))
        )
        if guard_owner:
            stmt = stmt.where(Lead.lease_owner == bindparam("_owner"))
        sets = {
            "state": bindparam("_to", type_=_LEAD_COLUMNS["state"].type),
            "state_changed_at": bindparam("_at", type_=_LEAD_COLUMNS["state_changed_at"].type),
        }
        sets.update({n: bindparam(f"v_{n}", type_=_LEAD_COLUMNS[n].type) for n in names})
        stmt = _TRANSITIONS[key] = stmt.values(sets)
    return stmt


# ---- the ledger's clock ----------------------------------------------------------
# Leases are judged on one clock for every host: the database's on Postgres (a
# worker whose clock drifts must not think a lease is still, or already no longer,
# its own), the process's on SQLite (one host, the embedded mode).


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def db_now(session: Session) -> datetime:
    """Now on the ledger's clock, in UTC (whatever the server's time zone)."""
    if is_postgres(session):
        now: datetime = session.execute(select(func.clock_timestamp())).scalar_one()
        return now.astimezone(UTC)
    return utcnow()


def clock(session: Session) -> Any:
    """The ledger's clock as a value for one statement (a SQL expression on Postgres)."""
    return func.clock_timestamp(type_=DateTime(timezone=True)) if is_postgres(session) else utcnow()


def _now_param(postgres: bool) -> Any:
    """Now inside a prebuilt statement: the server's clock, or a bound ``_at``."""
    if postgres:
        return func.clock_timestamp(type_=DateTime(timezone=True))
    return bindparam("_at", type_=_LEAD_COLUMNS["state_changed_at"].type)


def _lease_end(postgres: bool) -> Any:
    """Now plus the lease, inside a prebuilt statement."""
    if postgres:
        return _now_param(True) + bindparam("_lease", type_=Interval())
    return bindparam("_until", type_=_LEAD_COLUMNS["lease_until"].type)


def per_dialect(build: Callable[[bool], Any]) -> Callable[[Session], Any]:
    """A statement built once per database kind (``build(postgres)``), then reused.

    Building and cache-keying a statement cost more CPU than the round trip itself
    on the worker's hot path; the kinds differ in where "now" comes from.
    """
    built: dict[bool, Any] = {}

    def statement(session: Session) -> Any:
        postgres = is_postgres(session)
        if postgres not in built:
            built[postgres] = build(postgres)
        return built[postgres]

    return statement


def _clock_params(lease_seconds: float) -> dict[str, Any]:
    at = utcnow()
    lease = timedelta(seconds=lease_seconds)
    return {"_at": at, "_until": at + lease, "_lease": lease}


@per_dialect
def _claim_statement(postgres: bool) -> Any:
    now = _now_param(postgres)
    return (
        update(Lead)
        .where(
            Lead.id == bindparam("_id"),
            or_(
                (Lead.state == LeadState.normalised) & (Lead.next_attempt_at <= now),
                (Lead.state == LeadState.delivering) & (Lead.lease_until < now),
            ),
        )
        .values(
            state=LeadState.delivering,
            state_changed_at=now,
            lease_owner=bindparam("_owner", type_=_LEAD_COLUMNS["lease_owner"].type),
            lease_until=_lease_end(postgres),
            unfinished_runs=Lead.unfinished_runs + 1,
        )
        .returning(Lead.unfinished_runs)
    )


def claim(session: Session, lead_id: int, *, owner: str, lease_seconds: int) -> int | None:
    """Lease a lead for delivery: due and normalised, or abandoned by a dead worker.

    Returns how many delivery runs have now started without finishing (this one
    included), or None when the lead was not ours to take.
    """
    params = {"_id": lead_id, "_owner": owner, **_clock_params(lease_seconds)}
    stmt = _claim_statement(session)
    return session.connection().execute(stmt, params).scalar_one_or_none()  # type: ignore[no-any-return]


@per_dialect
def _reading_statement(postgres: bool) -> Any:
    now = _now_param(postgres)
    return (
        update(Lead)
        .where(
            Lead.id == bindparam("_id"),
            Lead.state == LeadState.received,
            or_(Lead.lease_until.is_(None), Lead.lease_until < now),
        )
        .values(
            unfinished_runs=Lead.unfinished_runs + 1,
            lease_owner=bindparam("_owner", type_=_LEAD_COLUMNS["lease_owner"].type),
            lease_until=_lease_end(postgres),
        )
        .returning(Lead.unfinished_runs, Lead.last_error, Lead.channel)
    )


@dataclass(frozen=True, slots=True)
class Reading:
    runs: int  # readings started and not finished, this one included
    last_error: str | None
    channel: str


def start_reading(session: Session, lead_id: int, *, owner: str, lease_seconds: int) -> Reading | None:
    """Lease a ``received`` lead to read it, counting the reading; None: read already, or being read."""
    params = {"_id": lead_id, "_owner": owner, **_clock_params(lease_seconds)}
    row = session.connection().execute(_reading_statement(session), params).one_or_none()
    return None if row is None else Reading(*row)


@dataclass(frozen=True, slots=True)
class CreateTag:
    """How Nexudus will know the opportunity a create is about to make."""

    name: str
    system_id: str


def _renewal(postgres: bool, *, creating: bool) -> Any:
    values: dict[str, Any] = {"lease_until": _lease_end(postgres)}
    if creating:
        values.update(
            create_sent_at=_now_param(postgres),
            opportunity_name=bindparam("_name", type_=_LEAD_COLUMNS["opportunity_name"].type),
            system_id=bindparam("_system_id", type_=_LEAD_COLUMNS["system_id"].type),
        )
    return (
        update(Lead)
        .where(
            Lead.id == bindparam("_id"),
            Lead.state == LeadState.delivering,
            Lead.lease_owner == bindparam("_owner"),
        )
        .values(values)
    )


_RENEW = per_dialect(lambda postgres: _renewal(postgres, creating=False))
_RENEW_CREATING = per_dialect(lambda postgres: _renewal(postgres, creating=True))


def renew_lease(
    session: Session, lead_id: int, *, owner: str, lease_seconds: int, creating: CreateTag | None = None
) -> bool:
    """Extend our lease to ``lease_seconds`` from now; False: another worker has taken the lead over.

    ``creating``: a create is about to be sent — the lead records, in the same
    statement, that one may have happened (now) and under which Name and SystemId.
    """
    params = {"_id": lead_id, "_owner": owner, **_clock_params(lease_seconds)}
    if creating is not None:
        params.update(_name=creating.name, _system_id=creating.system_id)
    stmt = (_RENEW if creating is None else _RENEW_CREATING)(session)
    return session.connection().execute(stmt, params).rowcount == 1  # type: ignore[no-any-return]


_RESTORE_CREATE_SENT = (
    update(Lead)
    .where(
        Lead.id == bindparam("_id"),
        Lead.state == LeadState.delivering,
        Lead.lease_owner == bindparam("_owner"),
    )
    .values(create_sent_at=bindparam("_sent", type_=_LEAD_COLUMNS["create_sent_at"].type))
)


def restore_create_sent(session: Session, lead_id: int, *, owner: str, sent_at: datetime | None) -> None:
    """A create was answered with a definite refusal: what may have happened is what did before it."""
    params = {"_id": lead_id, "_owner": owner, "_sent": sent_at}
    session.connection().execute(_RESTORE_CREATE_SENT, params)


def release(
    session: Session,
    lead_id: int,
    *,
    owner: str,
    next_attempt_at: datetime,
    error: str | None,
    count_attempt: bool,
) -> bool:
    """Give a leased lead back to wait for ``next_attempt_at`` (retry or throttle)."""
    values: dict[str, Any] = {
        "next_attempt_at": next_attempt_at,
        "lease_owner": None,
        "lease_until": None,
        "last_error": error,
        "unfinished_runs": 0,
    }
    if count_attempt:
        values["attempts"] = Lead.attempts + 1
    return transition(
        session, lead_id, from_states=[LeadState.delivering], to=LeadState.normalised, owner=owner, **values
    )


def open_dead_letter(
    session: Session,
    lead_id: int,
    *,
    reason: DeadReason,
    message: str,
    detail: dict[str, Any] | None = None,
) -> DeadLetter:
    letter = DeadLetter(lead_id=lead_id, reason=reason, message=message, detail=detail or {})
    session.add(letter)
    session.flush()
    return letter


def kill(
    session: Session,
    lead_id: int,
    *,
    from_states: Iterable[LeadState],
    reason: DeadReason,
    message: str,
    detail: dict[str, Any] | None = None,
    owner: str | None = None,
) -> DeadLetter | None:
    """Make a lead a dead letter (guarded); None if it was no longer in ``from_states``."""
    moved = transition(
        session,
        lead_id,
        from_states=from_states,
        to=LeadState.dead,
        owner=owner,
        lease_owner=None,
        lease_until=None,
        last_error=message,
        unfinished_runs=0,
    )
    if not moved:
        return None
    return open_dead_letter(session, lead_id, reason=reason, message=message, detail=detail)


@per_dialect
def _start_attempt_statement(postgres: bool) -> Any:
    columns = DeliveryAttempt.__table__.c
    return (
        insert(DeliveryAttempt)
        .values(
            lead_id=bindparam("_lead", type_=columns["lead_id"].type),
            call=bindparam("_call", type_=columns["call"].type),
            started_at=_now_param(postgres),
        )
        .returning(DeliveryAttempt.id)
    )


def start_attempt(session: Session, lead_id: int, call: str) -> int:
    """Record a call about to be made (its outcome NULL: in flight); returns the attempt's id."""
    params = {"_lead": lead_id, "_call": call, "_at": utcnow()}
    stmt = _start_attempt_statement(session)
    return session.connection().execute(stmt, params).scalar_one()  # type: ignore[no-any-return]


def audit(
    session: Session,
    *,
    actor: str,
    action: str,
    target: str,
    result: str,
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(AuditEntry(actor=actor, action=action, target=target, result=result, detail=detail or {}))


def lock_opportunity(
    session: Session, *, account: str, opportunity_id: int, owner: str, seconds: int
) -> bool:
    """Take the note lock of an opportunity (or an expired one); False while another holds it."""
    now = clock(session)  # one clock for every worker: a fast one must not take a live lock
    stmt = insert_for(session, OpportunityLock).values(
        account=account, opportunity_id=opportunity_id, owner=owner, until=now + timedelta(seconds=seconds)
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["account", "opportunity_id"],
        set_={"owner": stmt.excluded.owner, "until": stmt.excluded.until},
        where=OpportunityLock.until < now,
    ).returning(OpportunityLock.owner)
    return session.execute(stmt).scalar_one_or_none() == owner


def unlock_opportunity(session: Session, *, account: str, opportunity_id: int, owner: str) -> None:
    session.execute(
        delete(OpportunityLock).where(
            OpportunityLock.account == account,
            OpportunityLock.opportunity_id == opportunity_id,
            OpportunityLock.owner == owner,
        )
    )
