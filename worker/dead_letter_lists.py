"""Dead letters in bulk: the ids a bulk action touches, counts by reason.

Re-exported by ``dead_letters`` (the actions); ``leadrelay.ledger.search`` is the
searchable, keyset-paged listing the admin and CLI show.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TypeVarTuple

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from leadrelay.models import DeadLetter, DeadLetterStatus, DeadReason, Lead

_Ts = TypeVarTuple("_Ts")  # the columns a filtered select returns


@dataclass(frozen=True, slots=True)
class Filter:
    channel: str | None = None
    reason: DeadReason | None = None
    since: datetime | None = None
    status: DeadLetterStatus | None = DeadLetterStatus.open
    limit: int = 100


def _filtered(stmt: Select[*_Ts], flt: Filter) -> Select[*_Ts]:
    if flt.channel:
        stmt = stmt.where(Lead.channel == flt.channel)
    if flt.reason:
        stmt = stmt.where(DeadLetter.reason == flt.reason)
    if flt.since:
        stmt = stmt.where(DeadLetter.created_at >= flt.since)
    if flt.status:
        stmt = stmt.where(DeadLetter.status == flt.status)
    return stmt


def matching_ids(session: Session, flt: Filter) -> list[int]:
    """Ids of the open dead letters a bulk action would touch (oldest first, no limit)."""
    open_only = Filter(channel=flt.channel, reason=flt.reason, since=flt.since, status=DeadLetterStatus.open)
    stmt = _filtered(select(DeadLetter.id).join(Lead, Lead.id == DeadLetter.lead_id), open_only)
    return list(session.execute(stmt.order_by(DeadLetter.id)).scalars())


def counts(session: Session) -> dict[str, int]:
    """Open dead letters by reason."""
    stmt = (
        select(DeadLetter.reason, func.count())
        .where(DeadLetter.status == DeadLetterStatus.open)
        .group_by(DeadLetter.reason)
    )
    return {reason: int(n) for reason, n in session.execute(stmt)}
