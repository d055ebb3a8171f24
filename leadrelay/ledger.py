"""Ledger operations: intake, guarded state transitions, attempts, audit.

Every transition is one UPDATE whose WHERE clause states what must still be
true (the state, the lease owner); ``rowcount == 1`` means this caller won. No
function here commits: the request or task that calls them owns the transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, insert, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ClauseElement

from leadrelay.db import insert_for, utcnow
from leadrelay.models import (
    AuditEntry,
    DeadLetter,
    DeadLetterStatus,
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


_CLAIM = (
    update(Lead)
    .where(
        Lead.id == bindparam("_id"),
        or_(
            (Lead.state == LeadState.normalised) & (Lead.next_attempt_at <= bindparam("_at")),
            (Lead.state == LeadState.delivering) & (Lead.lease_until < bindparam("_at")),
        ),
    )
    .values(
        state=LeadState.delivering,
        state_changed_at=bindparam("_at", type_=_LEAD_COLUMNS["state_changed_at"].type),
        lease_owner=bindparam("_owner", type_=_LEAD_COLUMNS["lease_owner"].type),
        lease_until=bindparam("_until", type_=_LEAD_COLUMNS["lease_until"].type),
    )
)


def claim(
    session: Session, lead_id: int, *, owner: str, lease_seconds: int, now: datetime | None = None
) -> bool:
    """Lease a lead for delivery: due and normalised, or abandoned by a dead worker."""
    at = now or utcnow()
    params = {"_id": lead_id, "_at": at, "_owner": owner, "_until": at + timedelta(seconds=lease_seconds)}
    return session.connection().execute(_CLAIM, params).rowcount == 1


_RENEW_LEASE = (
    update(Lead)
    .where(
        Lead.id == bindparam("_id"),
        Lead.state == LeadState.delivering,
        Lead.lease_owner == bindparam("_owner"),
    )
    .values(lease_until=bindparam("_until", type_=_LEAD_COLUMNS["lease_until"].type))
)


def renew_lease(session: Session, lead_id: int, *, owner: str, lease_seconds: int) -> bool:
    """Extend our lease; False means another worker has taken the lead over."""
    params = {"_id": lead_id, "_owner": owner, "_until": utcnow() + timedelta(seconds=lease_seconds)}
    return session.connection().execute(_RENEW_LEASE, params).rowcount == 1


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
    )
    if not moved:
        return None
    return open_dead_letter(session, lead_id, reason=reason, message=message, detail=detail)


def start_attempt(
    session: Session, lead_id: int, call: str, *, started_at: datetime | None = None
) -> DeliveryAttempt:
    attempt = DeliveryAttempt(lead_id=lead_id, call=call, started_at=started_at or utcnow())
    session.add(attempt)
    session.flush()
    return attempt


_START_ATTEMPT = (
    insert(DeliveryAttempt)
    .values(
        lead_id=bindparam("_lead", type_=DeliveryAttempt.__table__.c["lead_id"].type),
        call=bindparam("_call", type_=DeliveryAttempt.__table__.c["call"].type),
        started_at=bindparam("_at", type_=DeliveryAttempt.__table__.c["started_at"].type),
    )
    .returning(DeliveryAttempt.id)
)


def start_attempt_id(session: Session, lead_id: int, call: str) -> int:
    """:func:`start_attempt` as one prebuilt INSERT … RETURNING id (the worker's hot path)."""
    params = {"_lead": lead_id, "_call": call, "_at": utcnow()}
    return session.connection().execute(_START_ATTEMPT, params).scalar_one()  # type: ignore[no-any-return]


def finish_attempt(
    session: Session,
    attempt_id: int,
    *,
    status_code: int | None,
    outcome: str,
    error: str | None = None,
    response: str | None = None,
) -> None:
    session.execute(
        update(DeliveryAttempt)
        .where(DeliveryAttempt.id == attempt_id)
        .values(
            finished_at=utcnow(),
            status_code=status_code,
            outcome=outcome,
            error=error,
            response=response[:RESPONSE_EXCERPT] if response else None,
        )
        .execution_options(synchronize_session=False)
    )


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


def open_dead_letter_for(session: Session, lead_id: int) -> DeadLetter | None:
    return session.execute(
        select(DeadLetter).where(DeadLetter.lead_id == lead_id, DeadLetter.status == DeadLetterStatus.open)
    ).scalar_one_or_none()


def lock_opportunity(
    session: Session, *, account: str, opportunity_id: int, owner: str, seconds: int
) -> bool:
    """Take the note lock of an opportunity (or an expired one); False while another holds it."""
    now = utcnow()
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
