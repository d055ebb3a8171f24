"""The few numbers that say whether leadrelay is keeping up, read cheaply from the ledger.

``/readyz``, ``/metrics`` and the alerting hook all read them here, so they
always agree: how many leads are still on their way and since when, how many dead
letters are open (by reason, and the newest one), whether each Nexudus
account's login works, whether each inbox is being read, and when the elected
scheduler last swept the ledger (and who it was). The queries touch only
undelivered leads and open dead letters, through the indexes on their state and
status, and one row each of the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from leadrelay.db import utcnow
from leadrelay.inbox_health import InboxHealth, intervals, read_inbox_health
from leadrelay.models import SWEEP_JOB, DeadLetter, DeadLetterStatus, Lead, LeadState, ScheduledJob
from leadrelay.nexudus.auth_state import AuthState, auth_states
from leadrelay.nexudus.budget import db_clock
from leadrelay.runtime import Runtime

UNDELIVERED = (LeadState.received, LeadState.normalised, LeadState.delivering)


@dataclass(frozen=True, slots=True)
class Sweep:
    """The scheduler's last sweep, on the ledger's clock."""

    at: datetime
    by: str | None  # the scheduler that ran it (host:pid:id)
    age: float  # seconds before the vitals were read


@dataclass(frozen=True, slots=True)
class Vitals:
    undelivered: dict[str, int]  # by state
    oldest_undelivered_at: datetime | None
    open_dead_letters: dict[str, int]  # by reason
    newest_open_dead_letter: int  # its id; 0 when none is open
    auth: list[AuthState]
    swept: Sweep | None = None  # None: no scheduler has ever swept this ledger
    inboxes: list[InboxHealth] = field(default_factory=list)

    def backlog_age(self, now: datetime | None = None) -> float:
        """Seconds the oldest undelivered lead has waited (0 with none waiting)."""
        if self.oldest_undelivered_at is None:
            return 0.0
        return max(0.0, ((now or utcnow()) - self.oldest_undelivered_at).total_seconds())

    @property
    def open_dead_letter_count(self) -> int:
        return sum(self.open_dead_letters.values())

    @property
    def failed_logins(self) -> list[AuthState]:
        return [state for state in self.auth if state.ok is False]


def read_vitals(
    session: Session,
    *,
    accounts: list[str],
    inboxes: Mapping[str, float] | None = None,
    stale_intervals: float = 2.0,
) -> Vitals:
    """``inboxes``: each configured inbox's poll interval, by name (inbox_health.intervals)."""
    waiting = session.execute(
        select(Lead.state, func.count(), func.min(Lead.received_at))
        .where(Lead.state.in_([s.value for s in UNDELIVERED]))
        .group_by(Lead.state)
    ).all()
    letters = session.execute(
        select(DeadLetter.reason, func.count(), func.max(DeadLetter.id))
        .where(DeadLetter.status == DeadLetterStatus.open)
        .group_by(DeadLetter.reason)
    ).all()
    oldest = [at for _, _, at in waiting if at is not None]
    return Vitals(
        undelivered={state: int(n) for state, n, _ in waiting},
        oldest_undelivered_at=min(oldest) if oldest else None,
        open_dead_letters={reason: int(n) for reason, n, _ in letters},
        newest_open_dead_letter=max((int(newest) for _, _, newest in letters), default=0),
        auth=auth_states(session, accounts),
        swept=_last_sweep(session),
        inboxes=read_inbox_health(session, inboxes or {}, stale_intervals=stale_intervals),
    )


def runtime_vitals(session: Session, rt: Runtime) -> Vitals:
    """The vitals of the accounts and inboxes in ``rt``'s routing file."""
    return read_vitals(
        session,
        accounts=list(rt.routing.accounts),
        inboxes=intervals(rt.routing),
        stale_intervals=rt.settings.inbox_stale_intervals,
    )


def _last_sweep(session: Session) -> Sweep | None:
    row = session.execute(
        select(ScheduledJob.last_done_at, ScheduledJob.last_runner).where(ScheduledJob.name == SWEEP_JOB)
    ).one_or_none()
    if row is None or row.last_done_at is None:
        return None
    age = (datetime.fromtimestamp(db_clock(session), UTC) - row.last_done_at).total_seconds()
    return Sweep(at=row.last_done_at, by=row.last_runner, age=max(0.0, age))
