"""The ledger's clock: the database's on Postgres, the process's on SQLite.

Leases are judged on one clock for every host: the database's on Postgres (a
worker whose clock drifts must not think a lease is still, or already no longer,
its own), the process's on SQLite (one host, the embedded mode).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, Interval, bindparam, func, select
from sqlalchemy.orm import Session

from leadrelay.db import utcnow
from leadrelay.models import Lead
from leadrelay.statements import is_postgres

_LEAD_COLUMNS = Lead.__table__.c


def db_now(session: Session) -> datetime:
    """Now on the ledger's clock, in UTC (whatever the server's time zone)."""
    if is_postgres(session):
        now: datetime = session.execute(select(func.clock_timestamp())).scalar_one()
        return now.astimezone(UTC)
    return utcnow()


def clock(session: Session) -> Any:
    """The ledger's clock as a value for one statement (a SQL expression on Postgres)."""
    return func.clock_timestamp(type_=DateTime(timezone=True)) if is_postgres(session) else utcnow()


def now_param(postgres: bool) -> Any:
    """Now inside a prebuilt statement: the server's clock, or a bound ``_at``."""
    if postgres:
        return func.clock_timestamp(type_=DateTime(timezone=True))
    return bindparam("_at", type_=_LEAD_COLUMNS["state_changed_at"].type)


def lease_end(postgres: bool) -> Any:
    """Now plus the lease, inside a prebuilt statement."""
    if postgres:
        return now_param(True) + bindparam("_lease", type_=Interval())
    return bindparam("_until", type_=_LEAD_COLUMNS["lease_until"].type)


def clock_params(lease_seconds: float) -> dict[str, Any]:
    """What :func:`now_param` and :func:`lease_end` bind: now and the lease's end, or its length."""
    at = utcnow()
    lease = timedelta(seconds=lease_seconds)
    return {"_at": at, "_until": at + lease, "_lease": lease}
