"""Raw inbound items into the ledger, once per intake key."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from leadrelay.db import insert_for, utcnow
from leadrelay.models import Lead, LeadState

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
