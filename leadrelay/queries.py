"""Read-only views of the ledger for people: recent leads, one lead, the audit log."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from leadrelay.canonical import CanonicalLead
from leadrelay.models import AuditEntry, DeadLetter, DeliveryAttempt, Lead


def pretty_lead(data: dict[str, Any] | None) -> str | None:
    """A stored canonical lead as indented JSON, in the model's field order."""
    if not data:
        return None
    try:
        ordered = CanonicalLead.model_validate(data, context={"region": None}).to_json_dict()
    except ValidationError:
        ordered = data  # stored before a model change: show it as it is
    return json.dumps(ordered, indent=2, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class LeadView:
    lead: Lead
    attempts: list[DeliveryAttempt]
    dead_letters: list[DeadLetter]


def recent_leads(
    session: Session, *, state: str | None = None, channel: str | None = None, limit: int = 50
) -> list[Lead]:
    stmt = select(Lead).order_by(Lead.id.desc()).limit(limit)
    if state:
        stmt = stmt.where(Lead.state == state)
    if channel:
        stmt = stmt.where(Lead.channel == channel)
    return list(session.execute(stmt).scalars())


def lead_view(session: Session, lead_id: int) -> LeadView | None:
    lead = session.get(Lead, lead_id)
    if lead is None:
        return None
    attempts = session.execute(
        select(DeliveryAttempt).where(DeliveryAttempt.lead_id == lead_id).order_by(DeliveryAttempt.id)
    ).scalars()
    letters = session.execute(
        select(DeadLetter).where(DeadLetter.lead_id == lead_id).order_by(DeadLetter.id)
    ).scalars()
    return LeadView(lead=lead, attempts=list(attempts), dead_letters=list(letters))


def audit_entries(session: Session, *, target: str | None = None, limit: int = 100) -> list[AuditEntry]:
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if target:
        stmt = stmt.where(AuditEntry.target == target)
    return list(session.execute(stmt).scalars())
