"""Leases on the ledger's clock: claiming a lead to deliver, to read, renewing before each request.

Each is one guarded UPDATE, prebuilt per database kind (:func:`leadrelay.statements.per_dialect`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, or_, update
from sqlalchemy.orm import Session

from leadrelay.ledger.dbclock import clock_params, lease_end, now_param
from leadrelay.models import Lead, LeadState
from leadrelay.statements import per_dialect

_LEAD_COLUMNS = Lead.__table__.c


@per_dialect
def _claim_statement(postgres: bool) -> Any:
    now = now_param(postgres)
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
            lease_until=lease_end(postgres),
            unfinished_runs=Lead.unfinished_runs + 1,
        )
        .returning(Lead.unfinished_runs)
    )


def claim(session: Session, lead_id: int, *, owner: str, lease_seconds: int) -> int | None:
    """Lease a lead for delivery: due and normalised, or abandoned by a dead worker.

    Returns how many delivery runs have now started without finishing (this one
    included), or None when the lead was not ours to take.
    """
    params = {"_id": lead_id, "_owner": owner, **clock_params(lease_seconds)}
    stmt = _claim_statement(session)
    return session.connection().execute(stmt, params).scalar_one_or_none()


@per_dialect
def _reading_statement(postgres: bool) -> Any:
    now = now_param(postgres)
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
            lease_until=lease_end(postgres),
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
    params = {"_id": lead_id, "_owner": owner, **clock_params(lease_seconds)}
    row = session.connection().execute(_reading_statement(session), params).one_or_none()
    return None if row is None else Reading(*row)


@dataclass(frozen=True, slots=True)
class CreateTag:
    """How Nexudus will know the opportunity a create is about to make."""

    name: str
    system_id: str


def _renewal(postgres: bool, *, creating: bool) -> Any:
    values: dict[str, Any] = {"lease_until": lease_end(postgres)}
    if creating:
        values.update(
            create_sent_at=now_param(postgres),
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
    params = {"_id": lead_id, "_owner": owner, **clock_params(lease_seconds)}
    if creating is not None:
        params.update(_name=creating.name, _system_id=creating.system_id)
    stmt = (_RENEW if creating is None else _RENEW_CREATING)(session)
    return session.connection().execute(stmt, params).rowcount == 1


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
