"""Reading and writing the bench's ledger directly: bulk intake, delivery times."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, select

from leadrelay.db import make_engine, make_session_factory
from leadrelay.models import Lead, LeadState
from leadrelay.testing.ledger import record_canonical


def ingest(url: str, bodies: Iterable[dict]) -> list[int]:
    """Record leads as the receiver would (one transaction), without enqueueing them."""
    return record_canonical(url, bodies, prefix="bench")


def times(
    url: str, *, ids: list[int] | None = None, account: str | None = None
) -> list[tuple[datetime, datetime]]:
    """(received_at, delivered_at) of the delivered leads among ``ids`` (or of ``account``)."""
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            stmt = select(Lead.received_at, Lead.delivered_at).where(Lead.state == LeadState.delivered)
            if ids is not None:
                stmt = stmt.where(Lead.id.in_(ids))
            if account is not None:
                stmt = stmt.where(Lead.account == account)
            return [(r, d) for r, d in session.execute(stmt).all()]
    finally:
        engine.dispose()


def count(url: str) -> int:
    """Leads in the ledger."""
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            return int(session.execute(select(func.count()).select_from(Lead)).scalar_one())
    finally:
        engine.dispose()


def states(url: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            rows = session.execute(select(Lead.state, func.count()).group_by(Lead.state)).all()
            return {state: count for state, count in rows}
    finally:
        engine.dispose()


def latencies_ms(pairs: list[tuple[datetime, datetime]]) -> list[float]:
    return sorted((d - r).total_seconds() * 1000 for r, d in pairs)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


def drain_rate(pairs: list[tuple[datetime, datetime]]) -> float:
    """Deliveries per second between the first and the last delivery."""
    done = sorted(d for _, d in pairs)
    if len(done) < 2:
        return 0.0
    return (len(done) - 1) / (done[-1] - done[0]).total_seconds()
