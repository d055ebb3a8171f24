"""One request budget per Nexudus account, shared by every worker on every host.

Nexudus throttles per account (NEXUDUS.md): a request per 100 ms, 120 a minute,
5,000 an hour, 200,000 a day; writes 60 a minute and 5,000 a day. Celery's own
``rate_limit`` is per worker process, so the budget lives in the ledger:

* the account's row in ``nexudus_accounts``, locked for the few milliseconds of a
  reservation, holds when the next request and the next write may go (strict
  spacing, so no 60-second window ever sees more than the limit) and until when
  a 409/429's ``Retry-After`` blocks everyone;
* ``nexudus_usage`` counts requests and writes per minute, for the hourly and
  daily caps (a sliding window over whole minutes, erring on the safe side);
* times come from the database's clock, so hosts whose clocks drift still agree.

``acquire`` reserves a slot only when it is within ``max_wait``; otherwise it
says how long to wait and reserves nothing, so a worker can hand the lead back
to the ledger instead of holding its slot. A worker that slips past its slot (a
busy CPU, a slow commit) could still send right on top of another's request, so
``pace_send``, called just before the request goes out, records the actual send
time and holds it at least the hard minimum gap (100 ms, with a margin) after
the previous one.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import case, delete, func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from leadrelay.db import insert_for, statement_commits, transaction, utcnow
from leadrelay.models import NexudusAccount, NexudusUsage
from leadrelay.routing import NexudusLimits

if TYPE_CHECKING:
    from leadrelay.runtime import Runtime

MINUTES_KEPT = 24 * 60 + 1
# Far from the hourly/daily caps (this many requests below them), the one-statement
# reservation may decide on usage sums a few reservations old (see _RESERVE).
CAP_SLACK = 500


def db_clock(session: Session) -> float:
    """Seconds since the epoch on the database's clock (the process's on SQLite)."""
    if session.get_bind().dialect.name == "postgresql":
        return float(session.execute(select(func.extract("epoch", func.clock_timestamp()))).scalar_one())
    return time.time()


SEND_GAP_MARGIN = 2.0  # actual sends stay this many times the hard minimum interval apart


@dataclass(frozen=True, slots=True)
class Spacing:
    """Seconds between requests, between writes and between actual sends; the minute length."""

    request: float
    write: float
    send: float
    minute: float

    @classmethod
    def of(cls, limits: NexudusLimits) -> Spacing:
        minute = 60.0 / limits.clock_speed
        hard_gap = limits.min_interval_ms / 1000 / limits.clock_speed
        per_request = max(hard_gap, minute / limits.requests_per_minute)
        return cls(
            request=per_request / limits.safety,
            write=minute / limits.writes_per_minute / limits.safety,
            send=hard_gap * SEND_GAP_MARGIN,
            minute=minute,
        )


def ensure_account(session: Session, account: str) -> None:
    session.execute(
        insert_for(session, NexudusAccount)
        .values(
            account=account, next_request_at=0.0, next_write_at=0.0, blocked_until=0.0, updated_at=utcnow()
        )
        .on_conflict_do_nothing(index_elements=["account"])
    )


def lock_account(session: Session, account: str) -> NexudusAccount:
    """The account's row, locked until the transaction ends (created on first use).

    The row nearly always exists: lock it in one round trip, insert only when missing.
    """
    locked = select(NexudusAccount).where(NexudusAccount.account == account).with_for_update()
    row = session.execute(locked).scalar_one_or_none()
    if row is not None:
        return row
    ensure_account(session, account)
    return session.execute(locked).scalar_one()


# One round trip per reservation on Postgres: lock the account row, read the
# database clock and the hour's and day's usage, decide, move the row on and count
# the request — the same decision ``LedgerBudget._reserve_exact`` takes in five
# statements.
#
# The UPDATE waits for the account's row lock and then computes its SET list from
# the row's latest committed version (READ COMMITTED re-check), so the spacing
# (next_request_at, next_write_at, blocked_until) is exact, as with SELECT … FOR
# UPDATE. The usage sums, though, come from the statement's snapshot, taken
# before the lock wait: they can miss the reservations committed while this one
# waited. Each of those moved ``updated_at``, so the statement knows: it reserves
# when the snapshot's ``updated_at`` is still the locked row's (nothing missed),
# or when the sums are ``CAP_SLACK`` requests or more below every cap (more than
# the lock queue can hold: every waiter is one open connection); otherwise it
# reserves nothing and says ``stale``, and the caller decides again the exact way.
_RESERVE = text(
    """
WITH clock AS (
    SELECT extract(epoch FROM clock_timestamp())::float8 AS now
), usage AS (
    SELECT
        coalesce(sum(u.requests) FILTER (WHERE u.minute > floor(c.now / :minute) - 60), 0) AS hour_requests,
        coalesce(sum(u.requests), 0) AS day_requests,
        coalesce(sum(u.writes), 0) AS day_writes,
        min(u.minute) FILTER (WHERE u.minute > floor(c.now / :minute) - 60) AS oldest_hour,
        min(u.minute) AS oldest_day
    FROM clock c
    LEFT JOIN nexudus_usage u ON u.account = :account AND u.minute > floor(c.now / :minute) - 1440
), seen AS (
    SELECT updated_at AS seen_at FROM nexudus_accounts WHERE account = :account
), decision AS (
    SELECT
        c.now,
        GREATEST(
            c.now,
            CASE WHEN u.hour_requests + 1 > :per_hour AND u.oldest_hour IS NOT NULL
                 THEN (u.oldest_hour + 61) * :minute END,
            CASE WHEN (u.day_requests + 1 > :per_day OR (:write AND u.day_writes + 1 > :writes_per_day))
                      AND u.oldest_day IS NOT NULL
                 THEN (u.oldest_day + 1441) * :minute END
        ) AS cap_until,
        (u.hour_requests + :slack <= :per_hour AND u.day_requests + :slack <= :per_day
         AND (NOT :write OR u.day_writes + :slack <= :writes_per_day)) AS far,
        s.seen_at
    FROM clock c, usage u, seen s
), moved AS (
    UPDATE nexudus_accounts a
    SET next_request_at = CASE WHEN r.ok THEN r.start + :request_gap ELSE a.next_request_at END,
        next_write_at = CASE WHEN r.ok AND :write THEN r.start + :write_gap ELSE a.next_write_at END,
        updated_at = CASE WHEN r.ok THEN clock_timestamp() ELSE a.updated_at END
    FROM (
        SELECT a2.account, d.now, t.start,
               (d.far OR a2.updated_at IS NOT DISTINCT FROM d.seen_at) AS fresh,
               (d.far OR a2.updated_at IS NOT DISTINCT FROM d.seen_at) AND t.start - d.now <= :max_wait AS ok
        FROM nexudus_accounts a2, decision d,
        LATERAL (SELECT GREATEST(d.now, a2.next_request_at, a2.blocked_until, d.cap_until,
                                 CASE WHEN :write THEN a2.next_write_at END) AS start) t
        WHERE a2.account = :account
        FOR UPDATE OF a2
    ) r
    WHERE a.account = r.account
    RETURNING r.now, r.start, r.fresh, r.ok
), counted AS (
    INSERT INTO nexudus_usage AS nu (account, minute, requests, writes)
    SELECT :account, floor(m.start / :minute)::bigint, 1, CASE WHEN :write THEN 1 ELSE 0 END
    FROM moved m WHERE m.ok
    ON CONFLICT (account, minute) DO UPDATE
    SET requests = nu.requests + 1, writes = nu.writes + excluded.writes
)
SELECT now, start, fresh, ok FROM moved
"""
)
_PACE = text(
    """
UPDATE nexudus_accounts
SET last_sent_at = GREATEST(extract(epoch FROM clock_timestamp())::float8, last_sent_at + :gap)
WHERE account = :account
RETURNING last_sent_at, extract(epoch FROM clock_timestamp())::float8
"""
)
_PENALISE = text(
    """
UPDATE nexudus_accounts
SET blocked_until = GREATEST(blocked_until, extract(epoch FROM clock_timestamp())::float8 + :seconds)
WHERE account = :account
RETURNING account
"""
)


@dataclass(frozen=True, slots=True)
class Slot:
    wait: float
    at: float | None  # None: not reserved (the wait was longer than allowed)


class LedgerBudget:
    def __init__(self, sessions: sessionmaker[Session], account: str, limits: NexudusLimits) -> None:
        self._sessions = sessions
        self._account = account
        self._limits = limits
        self._spacing = Spacing.of(limits)

    def acquire(self, *, write: bool, max_wait: float) -> float:
        return self.reserve(write=write, max_wait=max_wait).wait

    def reserve(self, *, write: bool, max_wait: float) -> Slot:
        """The next slot; reserved (``at`` set, on the database clock) only if within ``max_wait``."""
        if self._postgres:
            slot = self._reserve_in_one_statement(write=write, max_wait=max_wait)
            if slot is not None:
                return slot
        with transaction(self._sessions) as session:
            return self._reserve_exact(session, write=write, max_wait=max_wait)

    @property
    def _postgres(self) -> bool:
        return self._sessions.kw["bind"].dialect.name == "postgresql"

    def _reserve_in_one_statement(self, *, write: bool, max_wait: float) -> Slot | None:
        """``_RESERVE`` on an autocommit connection; None: decide the exact way."""
        limits, spacing = self._limits, self._spacing
        params = {
            "account": self._account,
            "minute": spacing.minute,
            "write": write,
            "max_wait": max_wait,
            "request_gap": spacing.request,
            "write_gap": spacing.write,
            "per_hour": limits.requests_per_hour * limits.safety,
            "per_day": limits.requests_per_day * limits.safety,
            "writes_per_day": limits.writes_per_day * limits.safety,
            "slack": CAP_SLACK,
        }
        for _ in range(2):
            with statement_commits(self._sessions) as session:
                row = session.execute(_RESERVE, params).one_or_none()
                if row is None:  # first use of the account
                    ensure_account(session, self._account)
                    continue
            now, start, fresh, ok = row
            if not fresh:
                return None
            wait = start - now
            return Slot(wait=wait, at=start if ok else None)
        return None

    def _reserve_exact(self, session: Session, *, write: bool, max_wait: float) -> Slot:
        row = lock_account(session, self._account)
        now = db_clock(session)
        start = max(now, row.next_request_at, row.blocked_until)
        if write:
            start = max(start, row.next_write_at)
        start = max(start, self._cap_wait(session, now, write=write))
        wait = start - now
        if wait > max_wait:
            return Slot(wait=wait, at=None)
        row.next_request_at = start + self._spacing.request
        if write:
            row.next_write_at = start + self._spacing.write
        row.updated_at = utcnow()
        self._count(session, start, write=write)
        return Slot(wait=wait, at=start)

    def pace_send(self) -> float:
        """Record a send happening now; seconds to wait first if another just went out."""
        if self._spacing.send <= 0:
            return 0.0
        if self._postgres:
            # one UPDATE: it waits for the row lock and reads the latest last_sent_at
            for _ in range(2):
                with statement_commits(self._sessions) as session:
                    row = session.execute(
                        _PACE, {"account": self._account, "gap": self._spacing.send}
                    ).one_or_none()
                    if row is None:
                        ensure_account(session, self._account)
                        continue
                send_at, now = row
                return max(0.0, send_at - now)
        with transaction(self._sessions) as session:
            row = lock_account(session, self._account)
            now = db_clock(session)
            send_at = max(now, row.last_sent_at + self._spacing.send)
            row.last_sent_at = send_at
            return send_at - now

    def penalise(self, seconds: float) -> None:
        """Nexudus said wait: nobody sends for this account until then."""
        if self._postgres:
            with statement_commits(self._sessions) as session:
                params = {"account": self._account, "seconds": seconds}
                if session.execute(_PENALISE, params).one_or_none() is not None:
                    return
        with transaction(self._sessions) as session:
            row = lock_account(session, self._account)
            row.blocked_until = max(row.blocked_until, db_clock(session) + seconds)

    def _minute(self, at: float) -> int:
        return math.floor(at / self._spacing.minute)

    def _cap_wait(self, session: Session, now: float, *, write: bool) -> float:
        """When the hourly/daily caps allow one more request (``now`` if they do)."""
        limits, current = self._limits, self._minute(now)
        usage = NexudusUsage
        in_hour = usage.minute > current - 60
        hour_requests, day_requests, day_writes, oldest_hour, oldest_day = session.execute(
            select(
                func.coalesce(func.sum(case((in_hour, usage.requests), else_=0)), 0),
                func.coalesce(func.sum(usage.requests), 0),
                func.coalesce(func.sum(usage.writes), 0),
                func.min(case((in_hour, usage.minute), else_=None)),
                func.min(usage.minute),
            ).where(usage.account == self._account, usage.minute > current - 1440)
        ).one()
        until = now
        if hour_requests + 1 > limits.requests_per_hour * limits.safety and oldest_hour is not None:
            until = max(until, (oldest_hour + 61) * self._spacing.minute)
        over_day = day_requests + 1 > limits.requests_per_day * limits.safety
        if (
            over_day or (write and day_writes + 1 > limits.writes_per_day * limits.safety)
        ) and oldest_day is not None:
            until = max(until, (oldest_day + 1441) * self._spacing.minute)
        return until

    def _count(self, session: Session, at: float, *, write: bool) -> None:
        stmt = insert_for(session, NexudusUsage).values(
            account=self._account, minute=self._minute(at), requests=1, writes=int(write)
        )
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=["account", "minute"],
                set_={"requests": NexudusUsage.requests + 1, "writes": NexudusUsage.writes + int(write)},
            )
        )


def forget_old_usage(session: Session, *, now: float, limits_by_account: dict[str, NexudusLimits]) -> int:
    """Drop usage minutes older than a day (called by the sweeper)."""
    dropped = 0
    for account, limits in limits_by_account.items():
        oldest = math.floor(now / Spacing.of(limits).minute) - MINUTES_KEPT
        result = session.execute(
            delete(NexudusUsage).where(NexudusUsage.account == account, NexudusUsage.minute < oldest)
        )
        dropped += result.rowcount or 0  # type: ignore[attr-defined]
    return dropped


def unblock(session: Session, account: str) -> None:
    """Clear a Retry-After block (tests and operators after a Nexudus incident)."""
    session.execute(update(NexudusAccount).where(NexudusAccount.account == account).values(blocked_until=0.0))


def budget_for(runtime: Runtime, account: str) -> LedgerBudget:
    return LedgerBudget(runtime.sessions, account, runtime.routing.accounts[account].limits)
