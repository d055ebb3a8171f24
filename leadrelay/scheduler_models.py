"""The scheduler's tables: the elected scheduler's lease, and each periodic job's last run.

Re-exported by ``models``; see ``leadrelay.worker.scheduling``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from leadrelay.db import Base, UtcDateTime, utcnow


class SchedulerLease(Base):
    """Which process is the scheduler now: elected by holding this row (worker/scheduling/lease.py).

    Its holder renews ``until`` (on the ledger's clock) at every tick; anyone may take
    the row once ``until`` has passed. ``term`` grows at every change of holder.
    """

    __tablename__ = "scheduler_leases"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    term: Mapped[int] = mapped_column(BigInteger, default=1)
    since: Mapped[datetime] = mapped_column(UtcDateTime())  # when this holder took it
    until: Mapped[datetime] = mapped_column(UtcDateTime())


class ScheduledJob(Base):
    """When a periodic job last started and ended, and who ran it, whichever process led then."""

    __tablename__ = "scheduled_jobs"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)  # sweep, alerts, poll-inbox-<name>…
    runs: Mapped[int] = mapped_column(BigInteger, default=0)  # claims so far: a claim is a compare-and-set
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    last_run_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_done_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_runner: Mapped[str | None] = mapped_column(String(200))
