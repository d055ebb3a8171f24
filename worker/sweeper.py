"""The sweeper: whatever the broker lost or delayed, the ledger brings back.

Runs from beat every second or so. It

* enqueues ``received`` leads whose message should have been consumed by now
  (never enqueued because the broker was down, or lost in a broker flush);
* dispatches, account by account and within each account's capacity, the
  ``normalised`` leads whose time has come (retries live in the ledger) and the
  ``delivering`` leads whose lease expired (their worker died);
* forgets Nexudus usage older than a day.

Enqueueing twice is harmless: the task re-checks the ledger, and a lead is
claimed by a guarded UPDATE.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from leadrelay.db import transaction, utcnow
from leadrelay.ledger import clock, state_is
from leadrelay.models import Lead, LeadState
from leadrelay.nexudus.budget import db_clock, forget_old_usage
from leadrelay.runtime import Runtime
from leadrelay.unit_of_work import unit_of_work
from leadrelay.worker.dispatch import Enqueue, accounts_with_waiting_leads, dispatch

RECEIVED_BATCH = 1000
STALLED_FACTOR = 10


@dataclass(frozen=True, slots=True)
class SweepReport:
    enqueued: int
    found: int


def stale_received(session: Session, *, now: datetime, requeue_after: timedelta, limit: int) -> list[int]:
    """Received leads whose message should have been consumed by now."""
    return list(session.execute(stale_received_query(now, requeue_after, limit)).scalars())


def stale_received_query(now: datetime, requeue_after: timedelta, limit: int) -> Any:
    lost = or_(Lead.enqueued_at.is_(None), Lead.enqueued_at < now - requeue_after)
    return select(Lead.id).where(state_is(LeadState.received), lost).order_by(Lead.id).limit(limit)


def lost_after(rt: Runtime, waiting: int | None) -> timedelta:
    """How old an unconsumed message must be before we call it lost.

    While messages are still waiting in the queue, a received lead's message is
    most likely among them (a backlog, not a loss): re-enqueueing it would only
    pile duplicates onto the backlog. So the short grace applies when the queue
    is empty (a flushed or restarted broker) or cannot be asked, and a long one
    otherwise, for a message lost while others were still flowing.
    """
    grace = timedelta(seconds=rt.settings.requeue_after_seconds)
    return grace if not waiting else grace * STALLED_FACTOR


def sweep(rt: Runtime, *, enqueue: Enqueue, waiting: Callable[[], int | None] = lambda: None) -> SweepReport:
    now = utcnow()
    grace = timedelta(seconds=rt.settings.requeue_after_seconds)
    lost = lost_after(rt, waiting())  # asked before the transaction: no lock held on a broker call
    with unit_of_work(rt, publish=enqueue) as uow:
        session = uow.session
        received = stale_received(session, now=now, requeue_after=lost, limit=RECEIVED_BATCH)
        # leases are judged on the ledger's clock (the workers that set them judge them so)
        accounts = accounts_with_waiting_leads(session, now=clock(session), grace=grace)
        limits = {name: account.limits for name, account in rt.routing.accounts.items()}
        forget_old_usage(session, now=db_clock(session), limits_by_account=limits)
        uow.enqueue(*received)
    sent = uow.published
    if sent:
        # only what reached the broker; a refusal leaves the rest for the next pass
        with transaction(rt.sessions) as session:
            session.execute(
                update(Lead)
                .where(Lead.id.in_(received[:sent]))
                .values(enqueued_at=now)
                .execution_options(synchronize_session=False)
            )
    found = len(received)
    for account in accounts:
        dispatched = dispatch(rt, account, enqueue=enqueue)
        sent += dispatched
        found += dispatched
    return SweepReport(enqueued=sent, found=found)
