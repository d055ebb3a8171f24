"""The ledger's clock, and statements built once per database kind.

Leases are judged on one clock for every host: the database's on Postgres (a
worker whose clock drifts must not think a lease is still, or already no longer,
its own), the process's on SQLite (one host, the embedded mode).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, Interval, bindparam, func, select
from sqlalchemy.orm import Session

from leadrelay.db import utcnow
from leadrelay.models import Lead

_LEAD_COLUMNS = Lead.__table__.c


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


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


def per_dialect(build: Callable[[bool], Any]) -> Callable[[Session], Any]:
    """A statement built once per database kind (``build(postgres)``), then reused.

    Building and cache-keying a statement cost more CPU than the round trip itself
    on the worker's hot path; the kinds differ in where "now" comes from.
    """
    built: dict[bool, Any] = {}

    def statement(session: Session) -> Any:
        postgres = is_postgres(session)
        if postgres not in built:
            built[postgres] = build(postgres)
        return built[postgres]

    return statement


def clock_params(lease_seconds: float) -> dict[str, Any]:
    """What :func:`now_param` and :func:`lease_end` bind: now and the lease's end, or its length."""
    at = utcnow()
    lease = timedelta(seconds=lease_seconds)
    return {"_at": at, "_until": at + lease, "_lease": lease}
