"""The sweeper: whatever the broker lost or delayed, the ledger brings back.

Runs from beat every few seconds. It enqueues

* ``received`` leads whose message should have been consumed by now
  (never enqueued because the broker was down, or lost by a broker flush);
* ``normalised`` leads whose retry time has come (retries live in the ledger);
* ``delivering`` leads whose lease expired (their worker died).

Enqueueing twice is harmless: the task re-checks the ledger and a lead is
claimed by a guarded UPDATE.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from leadrelay.db import transaction, utcnow
from leadrelay.models import Lead, LeadState
from leadrelay.runtime import Runtime


@dataclass(frozen=True, slots=True)
class SweepReport:
    enqueued: int
    found: int


def due_leads(session: Session, *, now: datetime, requeue_after: timedelta, limit: int) -> list[int]:
    stale = now - requeue_after
    lost = or_(Lead.enqueued_at.is_(None), Lead.enqueued_at < stale)
    stmt = (
        select(Lead.id)
        .where(
            or_(
                and_(Lead.state == LeadState.received, lost),
                and_(
                    Lead.state == LeadState.normalised,
                    Lead.next_attempt_at <= now,
                    or_(lost, Lead.enqueued_at < Lead.next_attempt_at),
                ),
                and_(
                    Lead.state == LeadState.delivering,
                    Lead.lease_until < now,
                    or_(lost, Lead.enqueued_at < Lead.lease_until),
                ),
            )
        )
        .order_by(Lead.next_attempt_at)
        .limit(limit)
    )
    return list(session.execute(stmt).scalars())


def mark_enqueued(session: Session, lead_ids: Iterable[int], *, now: datetime) -> None:
    ids = list(lead_ids)
    if ids:
        session.execute(
            update(Lead)
            .where(Lead.id.in_(ids))
            .values(enqueued_at=now)
            .execution_options(synchronize_session=False)
        )


def sweep(rt: Runtime, *, enqueue: Callable[[list[int]], int], limit: int = 1000) -> SweepReport:
    now = utcnow()
    requeue_after = timedelta(seconds=rt.settings.requeue_after_seconds)
    with transaction(rt.sessions) as session:
        ids = due_leads(session, now=now, requeue_after=requeue_after, limit=limit)
    if not ids:
        return SweepReport(enqueued=0, found=0)
    sent = enqueue(ids)
    if sent:
        with transaction(rt.sessions) as session:
            mark_enqueued(session, ids[:sent], now=now)
    return SweepReport(enqueued=sent, found=len(ids))
