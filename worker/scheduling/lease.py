"""Electing the scheduler: one lease row in the ledger, judged on the ledger's clock.

A candidate takes the row when it is lapsed, and its holder renews it at every
tick; a holder that stops (killed, frozen, cut off from the database) loses it
``scheduler_lease_seconds`` after its last renewal. Taking and renewing are one
``INSERT … ON CONFLICT DO UPDATE … WHERE``: the row lock orders two candidates,
and the second one's WHERE sees the first one's fresh lease, so they never both
win. On Postgres the times are the server's (``clock_timestamp()``), so hosts
whose clocks disagree still agree on who leads; the embedded SQLite ledger lives
on one host and uses its clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, case, exists, or_, update
from sqlalchemy.orm import Session

from leadrelay.db import insert_for
from leadrelay.ledger import clock
from leadrelay.models import SchedulerLease

SCHEDULER = "scheduler"


@dataclass(frozen=True, slots=True)
class Leadership:
    """The lease as its holder just took or renewed it."""

    holder: str
    term: int
    since: datetime
    until: datetime


def take_or_renew(session: Session, *, holder: str, seconds: float) -> Leadership | None:
    """Lead for ``seconds`` more if the lease is ours or lapsed; None while another holds it."""
    now = clock(session)
    table = SchedulerLease.__table__
    stmt = insert_for(session, SchedulerLease).values(
        name=SCHEDULER, holder=holder, term=1, since=now, until=now + timedelta(seconds=seconds)
    )
    offered = stmt.excluded
    ours = table.c.holder == offered.holder
    stmt = stmt.on_conflict_do_update(
        index_elements=["name"],
        set_={
            "holder": offered.holder,
            "until": offered.until,
            "term": case((ours, table.c.term), else_=table.c.term + 1),
            "since": case((ours, table.c.since), else_=offered.since),
        },
        where=or_(ours, table.c.until < offered.since),
    ).returning(SchedulerLease.holder, SchedulerLease.term, SchedulerLease.since, SchedulerLease.until)
    row = session.execute(stmt).one_or_none()
    return None if row is None else Leadership(*row)


def resign(session: Session, *, holder: str) -> None:
    """Give the lease up now (a clean stop), so the next candidate takes over at its next tick."""
    session.execute(
        update(SchedulerLease)
        .where(SchedulerLease.name == SCHEDULER, SchedulerLease.holder == holder)
        .values(until=clock(session))
    )


def holds(session: Session, holder: str) -> ColumnElement[bool]:
    """True, inside a statement, while ``holder`` holds an unexpired lease."""
    return exists().where(
        and_(
            SchedulerLease.name == SCHEDULER,
            SchedulerLease.holder == holder,
            SchedulerLease.until > clock(session),
        )
    )
