"""The admin's overview, read from the ledger with aggregate queries (no lead row is loaded).

For a period of whole UTC days: leads per channel per day by state, and the time from
intake to opportunity (p50/p95) per channel; then, whatever the period, the open dead
letters by reason and each Nexudus account's usage against its caps.

Every number is the count of a list the admin can open: the leads of a channel received
on a day (``received``), of those the ones now in one state (``delivered``,
``duplicate``, ``dead``). A day is ``from`` ≤ received date ≤ ``to``, both inclusive.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Date, and_, case, cast, func, select
from sqlalchemy.orm import Session

from leadrelay.models import DeadLetter, DeadLetterStatus, Lead, LeadState, NexudusAccount, NexudusUsage

PERIODS = (7, 30, 90)  # the periods the page offers, in days
SHOWN_STATES = (LeadState.delivered, LeadState.duplicate, LeadState.dead)
QUANTILES = (0.5, 0.95)


@dataclass(frozen=True, slots=True)
class Period:
    first: date  # inclusive
    last: date  # inclusive

    @classmethod
    def ending(cls, today: date, days: int) -> Period:
        return cls(first=today - timedelta(days=days - 1), last=today)

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(), tzinfo=UTC)

    @property
    def end(self) -> datetime:  # exclusive
        return datetime.combine(self.last + timedelta(days=1), time(), tzinfo=UTC)

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]


@dataclass(slots=True)
class ChannelDays:
    """One channel's leads per received day: all of them, and by state."""

    channel: str
    received: dict[date, int] = field(default_factory=dict)
    by_state: dict[str, dict[date, int]] = field(default_factory=dict)

    def total(self, state: str | None = None) -> int:
        return sum((self.received if state is None else self.by_state.get(state, {})).values())

    def on(self, day: date, state: str | None = None) -> int:
        return (self.received if state is None else self.by_state.get(state, {})).get(day, 0)


@dataclass(frozen=True, slots=True)
class Latency:
    """Seconds from intake to opportunity over a channel's delivered leads."""

    channel: str
    count: int
    p50: float
    p95: float


def _day(session: Session) -> Any:
    """A lead's received date in UTC, as the database computes it."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone("UTC", Lead.received_at), Date)
    return func.date(Lead.received_at)  # SQLite keeps naive UTC text


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def leads_per_day(session: Session, period: Period) -> list[ChannelDays]:
    """Leads received in ``period`` per channel, per day, per state (one GROUP BY)."""
    day = _day(session).label("day")
    rows = session.execute(
        select(Lead.channel, day, Lead.state, func.count())
        .where(Lead.received_at >= period.start, Lead.received_at < period.end)
        .group_by(Lead.channel, day, Lead.state)
    ).all()
    channels: dict[str, ChannelDays] = {}
    for channel, on, state, n in rows:
        entry = channels.setdefault(channel, ChannelDays(channel))
        when = _as_date(on)
        entry.received[when] = entry.received.get(when, 0) + int(n)
        per_state = entry.by_state.setdefault(state, {})
        per_state[when] = per_state.get(when, 0) + int(n)
    return [channels[name] for name in sorted(channels)]


def _delivered_in(period: Period) -> Any:
    return and_(
        Lead.state == LeadState.delivered,
        Lead.delivered_at.is_not(None),
        Lead.received_at >= period.start,
        Lead.received_at < period.end,
    )


def latencies(session: Session, period: Period) -> list[Latency]:
    """p50 and p95 of delivered_at − received_at per channel, for leads received in ``period``.

    Postgres computes them with ``percentile_cont``; SQLite (the demo) has no such
    aggregate, so each quantile is read as the one or two middle values the same
    linear interpolation needs, by ORDER BY … LIMIT 2 OFFSET k on the database.
    """
    if session.get_bind().dialect.name == "postgresql":
        seconds = func.extract("epoch", Lead.delivered_at - Lead.received_at)
        rows = session.execute(
            select(
                Lead.channel,
                func.count(),
                *(func.percentile_cont(q).within_group(seconds) for q in QUANTILES),
            )
            .where(_delivered_in(period))
            .group_by(Lead.channel)
            .order_by(Lead.channel)
        ).all()
        return [Latency(c, int(n), float(p50), float(p95)) for c, n, p50, p95 in rows]
    return _latencies_portable(session, period)


def _latencies_portable(session: Session, period: Period) -> list[Latency]:
    seconds = (func.julianday(Lead.delivered_at) - func.julianday(Lead.received_at)) * 86400.0
    counts = session.execute(
        select(Lead.channel, func.count())
        .where(_delivered_in(period))
        .group_by(Lead.channel)
        .order_by(Lead.channel)
    ).all()
    found = []
    for channel, n in counts:
        quantiles = []
        for q in QUANTILES:
            position = q * (int(n) - 1)
            below = math.floor(position)
            pair = (
                session.execute(
                    select(seconds)
                    .where(_delivered_in(period), Lead.channel == channel)
                    .order_by(seconds)
                    .limit(2)
                    .offset(below)
                )
                .scalars()
                .all()
            )
            low = float(pair[0])
            high = float(pair[-1])
            quantiles.append(low + (high - low) * (position - below))
        found.append(Latency(channel, int(n), quantiles[0], quantiles[1]))
    return found


def open_dead_letters(session: Session) -> dict[str, int]:
    """Open dead letters by reason, most first."""
    rows = session.execute(
        select(DeadLetter.reason, func.count())
        .where(DeadLetter.status == DeadLetterStatus.open)
        .group_by(DeadLetter.reason)
    ).all()
    return {reason: int(n) for reason, n in sorted(rows, key=lambda row: (-row[1], row[0]))}


@dataclass(frozen=True, slots=True)
class Usage:
    """An account's requests in the last hour and day, and writes in the last day."""

    account: str
    hour_requests: int
    day_requests: int
    day_writes: int


def usage(session: Session, minutes: Mapping[str, int]) -> list[Usage]:
    """Each account's usage, as its budget counts it: ``minutes`` maps it to its current minute."""
    found = []
    for account, current in sorted(minutes.items()):
        in_hour = NexudusUsage.minute > current - 60
        hour, day, writes = session.execute(
            select(
                func.coalesce(func.sum(case((in_hour, NexudusUsage.requests), else_=0)), 0),
                func.coalesce(func.sum(NexudusUsage.requests), 0),
                func.coalesce(func.sum(NexudusUsage.writes), 0),
            ).where(NexudusUsage.account == account, NexudusUsage.minute > current - 1440)
        ).one()
        found.append(Usage(account, int(hour), int(day), int(writes)))
    return found


def blocked_accounts(session: Session, now: float) -> set[str]:
    """Accounts Nexudus told to wait (a 409/429 with Retry-After) whose wait is not over at ``now``."""
    rows = session.execute(select(NexudusAccount.account).where(NexudusAccount.blocked_until > now))
    return set(rows.scalars())
