"""Rows the ledger only adds: a delivery's attempt rows, the audit trail."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, insert
from sqlalchemy.orm import Session

from leadrelay.db import utcnow
from leadrelay.driver import Unit, as_unit
from leadrelay.ledger.dbclock import now_param
from leadrelay.models import AuditEntry, DeliveryAttempt
from leadrelay.statements import per_dialect

RESPONSE_EXCERPT = 2000


@per_dialect
def _start_attempt_statement(postgres: bool) -> Any:
    columns = DeliveryAttempt.__table__.c
    return (
        insert(DeliveryAttempt)
        .values(
            lead_id=bindparam("_lead", type_=columns["lead_id"].type),
            call=bindparam("_call", type_=columns["call"].type),
            started_at=now_param(postgres),
        )
        .returning(DeliveryAttempt.id)
    )


def start_attempt(session: Session | Unit, lead_id: int, call: str) -> int:
    """Record a call about to be made (its outcome NULL: in flight); returns the attempt's id."""
    params = {"_lead": lead_id, "_call": call, "_at": utcnow()}
    return int(as_unit(session).execute(_start_attempt_statement, params)[0][0])


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
