"""Periodic jobs and their runs in the ledger: once per schedule, whichever process leads.

A job's row in ``scheduled_jobs`` says when its last run started, when it ended
and who ran it. The leader claims a due job with one guarded UPDATE that holds
only while its lease does and only if nobody claimed the job since the row was
read, so a change of leader neither runs a job twice (the new leader sees the
last run) nor skips one (it sees when the job is due, not when it came to lead).
A run that never ended is due again once it is older than a lease: its runner
cannot still be leading.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from leadrelay.db import insert_for
from leadrelay.ledger import clock, db_now
from leadrelay.models import ScheduledJob
from leadrelay.worker.scheduling.lease import holds

# A tick's timing varies by milliseconds: a job due within this fraction of its
# interval runs now rather than a whole tick late.
EARLY = 0.05


class Schedule(Protocol):
    def due(self, *, last_run: datetime | None, since: datetime, now: datetime) -> bool: ...


@dataclass(frozen=True, slots=True)
class Every:
    seconds: float

    def due(self, *, last_run: datetime | None, since: datetime, now: datetime) -> bool:
        return last_run is None or (now - last_run).total_seconds() >= self.seconds * (1 - EARLY)


@dataclass(frozen=True, slots=True)
class DailyAt:
    """Once a day at ``hour:minute`` UTC; first at the next such time after the job was first seen."""

    hour: int
    minute: int

    def latest(self, now: datetime) -> datetime:
        today = now.astimezone(UTC).replace(hour=self.hour, minute=self.minute, second=0, microsecond=0)
        return today if today <= now else today - timedelta(days=1)

    def due(self, *, last_run: datetime | None, since: datetime, now: datetime) -> bool:
        return (last_run or since) < self.latest(now)


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    schedule: Schedule
    run: Callable[[], object]


@dataclass(frozen=True, slots=True)
class Claim:
    """One run of a job, claimed: ``number`` lets only this run record its end."""

    job: Job
    number: int
    previous_run_at: datetime | None


def _is_due(job: Job, row: ScheduledJob, *, now: datetime, stale_after: timedelta) -> bool:
    started, ended = row.last_run_at, row.last_done_at
    if started is not None and (ended is None or ended < started):
        return now - started >= stale_after  # a run that never ended: its runner died or is stuck
    return job.schedule.due(last_run=started, since=row.created_at, now=now)


def _rows(session: Session, names: list[str]) -> dict[str, ScheduledJob]:
    def read() -> dict[str, ScheduledJob]:
        rows = session.execute(select(ScheduledJob).where(ScheduledJob.name.in_(names))).scalars()
        return {row.name: row for row in rows}

    found = read()
    if len(found) < len(names):
        now = db_now(session)
        session.execute(
            insert_for(session, ScheduledJob)
            .values([{"name": name, "runs": 0, "created_at": now} for name in names if name not in found])
            .on_conflict_do_nothing(index_elements=["name"])
        )
        found = read()
    return found


def claim_due(session: Session, jobs: Sequence[Job], *, holder: str, stale_after: timedelta) -> list[Claim]:
    """Claim every job that is due now, as long as ``holder`` leads."""
    rows = _rows(session, [job.name for job in jobs])
    now = db_now(session)
    claims = []
    for job in jobs:
        row = rows[job.name]
        if not _is_due(job, row, now=now, stale_after=stale_after):
            continue
        claimed = session.execute(
            update(ScheduledJob)
            .where(ScheduledJob.name == job.name, ScheduledJob.runs == row.runs, holds(session, holder))
            .values(runs=row.runs + 1, last_run_at=clock(session), last_runner=holder)
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        if claimed:
            claims.append(Claim(job, row.runs + 1, row.last_run_at))
    return claims


def finish(session: Session, claim: Claim, *, ok: bool) -> None:
    """Record the run's end; a failed run is un-claimed, so the next tick tries again."""
    values = {"last_done_at": clock(session)} if ok else {"last_run_at": claim.previous_run_at}
    session.execute(
        update(ScheduledJob)
        .where(ScheduledJob.name == claim.job.name, ScheduledJob.runs == claim.number)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
