"""Which leads go to the workers now: per account, no more than it can deliver.

Each Nexudus account delivers at most ``limits.concurrent_deliveries`` leads at
once (checked under the account's row lock). The rest wait in the ledger, not in
the broker and not in a worker slot, and are dispatched when a delivery of the
same account ends or the sweeper passes. So one account's backlog occupies a
few worker slots at most, and another account's leads are never stuck behind it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session

from leadrelay import ledger
from leadrelay.models import Lead, LeadState
from leadrelay.nexudus.budget import lock_account
from leadrelay.routing import Routing
from leadrelay.runtime import Runtime
from leadrelay.unit_of_work import Publish, unit_of_work

Enqueue = Publish
UNGATED_BATCH = 500


class Claim(StrEnum):
    claimed = "claimed"
    busy = "busy"  # the account is delivering as many leads as it may
    not_due = "not_due"  # delivered, leased by someone else, or not yet due


@dataclass(frozen=True, slots=True)
class Claimed:
    status: Claim
    runs: int = 0  # delivery runs started and not finished, this one included


def _capacity(routing: Routing, account: str | None) -> int | None:
    if account is None or account not in routing.accounts:
        return None  # no account: delivery will dead-letter it (routing) without calling Nexudus
    return routing.accounts[account].limits.concurrent_deliveries


def _delivering(account: str, now: Any) -> ColumnElement[bool]:
    return and_(Lead.account == account, Lead.state == LeadState.delivering, Lead.lease_until >= now)


def _waiting(now: Any, grace: timedelta) -> ColumnElement[bool]:
    """Due, and not handed to a worker recently (or its message was lost)."""
    stale = now - grace
    return or_(
        and_(
            Lead.state == LeadState.normalised,
            Lead.next_attempt_at <= now,
            or_(
                Lead.enqueued_at.is_(None), Lead.enqueued_at < Lead.next_attempt_at, Lead.enqueued_at < stale
            ),
        ),
        and_(
            Lead.state == LeadState.delivering,
            Lead.lease_until < now,
            or_(Lead.enqueued_at.is_(None), Lead.enqueued_at < Lead.lease_until, Lead.enqueued_at < stale),
        ),
    )


def _handed_out(now: Any, grace: timedelta) -> ColumnElement[bool]:
    """Sent to a worker within the grace period and not claimed yet."""
    recent = Lead.enqueued_at >= now - grace
    return or_(
        and_(Lead.state == LeadState.normalised, recent, Lead.enqueued_at >= Lead.next_attempt_at),
        and_(
            Lead.state == LeadState.delivering,
            Lead.lease_until < now,
            recent,
            Lead.enqueued_at >= Lead.lease_until,
        ),
    )


def claim(session: Session, lead_id: int, *, owner: str, lease_seconds: int, routing: Routing) -> Claimed:
    """Lease a lead for delivery if it is due and its account has room."""
    account = session.execute(select(Lead.account).where(Lead.id == lead_id)).scalar_one_or_none()
    capacity = _capacity(routing, account)
    if account is not None and capacity is not None:
        lock_account(session, account)
        busy = session.execute(
            select(func.count()).where(_delivering(account, ledger.clock(session)))
        ).scalar_one()
        if busy >= capacity:
            # back to waiting: the next dispatch for this account picks it up
            session.execute(
                update(Lead)
                .where(Lead.id == lead_id, Lead.state == LeadState.normalised)
                .values(enqueued_at=None)
                .execution_options(synchronize_session=False)
            )
            return Claimed(Claim.busy)
    runs = ledger.claim(session, lead_id, owner=owner, lease_seconds=lease_seconds)
    return Claimed(Claim.not_due) if runs is None else Claimed(Claim.claimed, runs)


def dispatch(rt: Runtime, account: str | None, *, enqueue: Enqueue) -> int:
    """Hand an account's waiting leads to the workers, up to its free capacity."""
    grace = timedelta(seconds=rt.settings.requeue_after_seconds)
    with unit_of_work(rt, publish=enqueue) as uow:
        session = uow.session
        now = ledger.clock(session)
        capacity = _capacity(rt.routing, account)
        of_account = Lead.account == account if account is not None else Lead.account.is_(None)
        if account is not None and capacity is not None:
            lock_account(session, account)
            taken = session.execute(
                select(func.count()).where(
                    or_(_delivering(account, now), and_(of_account, _handed_out(now, grace)))
                )
            ).scalar_one()
            room = capacity - taken
        else:
            room = UNGATED_BATCH
        if room <= 0:
            return 0
        ids = list(
            session.execute(
                select(Lead.id)
                .where(of_account, _waiting(now, grace))
                .order_by(Lead.next_attempt_at, Lead.id)
                .limit(room)
            ).scalars()
        )
        if ids:
            session.execute(
                update(Lead)
                .where(Lead.id.in_(ids))
                .values(enqueued_at=now)
                .execution_options(synchronize_session=False)
            )
            uow.enqueue(*ids)
    return uow.published


def accounts_with_waiting_leads(session: Session, *, now: Any, grace: timedelta) -> list[str | None]:
    stmt = select(Lead.account).where(_waiting(now, grace)).distinct()
    return list(session.execute(stmt).scalars())


def account_of(rt: Runtime, lead_id: int) -> str | None:
    with rt.sessions() as session:
        return session.execute(select(Lead.account).where(Lead.id == lead_id)).scalar_one_or_none()
