"""One request budget per Nexudus account, shared by every worker on every host.

Nexudus throttles per account (NEXUDUS.md): a request per 100 ms, 120 a minute,
5,000 an hour, 200,000 a day; writes 60 a minute and 5,000 a day. Celery's own
``rate_limit`` is per worker process, so the budget lives in the ledger:

* the account's row in ``nexudus_accounts``, locked for the few milliseconds of a
  reservation, holds when the next request and the next write may go and until
  when a 409/429's ``Retry-After`` blocks everyone. Writes are strictly spaced.
  Requests follow the generic cell rate algorithm: ``next_request_at`` is the
  theoretical arrival time, and a request may come up to one spacing early (a
  burst of two), with the spacing widened so that no 60-second window ever sees
  more than the limit. The burst lets two leads' lookups fall between the same
  two writes (two leads delivered in step otherwise lose half a spacing per
  pair of leads; bench/PROFILE.md, fifth pass);
* ``nexudus_usage`` counts requests and writes per minute, for the hourly and
  daily caps (a sliding window over whole minutes, erring on the safe side);
* times come from the database's clock, so hosts whose clocks drift still agree.

``acquire`` reserves a slot only when it is within ``max_wait``; otherwise it
says how long to wait and reserves nothing, so a worker can hand the lead back
to the ledger instead of holding its slot. A worker that slips past its slot (a
busy CPU, a slow commit) could still send right on top of another's request, so
``pace_send``, called just before the request goes out, records the actual send
time and holds it at least the hard minimum gap after the previous one, with a
margin for what can still slip between the pacing and Nexudus's clock (200 ms
apart at the documented 100 ms; see ``SEND_SLIP``).
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import String, bindparam, case, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from leadrelay.db import insert_for, transaction, utcnow
from leadrelay.driver import SessionUnit, Step, Unit, as_unit, unit
from leadrelay.models import NexudusAccount, NexudusUsage
from leadrelay.routing import NexudusLimits
from leadrelay.statements import PACE, PENALISE, RESERVE, per_dialect

if TYPE_CHECKING:
    from leadrelay.runtime import Runtime

MINUTES_KEPT = 24 * 60 + 1
# Far from the hourly/daily caps (this many requests below them), the one-statement
# reservation may decide on usage sums a few reservations old (see statements.RESERVE).
CAP_SLACK = 500
_FRESH = 2  # RESERVE's row: now, start, fresh, ok


def db_clock(session: Session) -> float:
    """Seconds since the epoch on the database's clock (the process's on SQLite)."""
    if session.get_bind().dialect.name == "postgresql":
        return float(session.execute(select(func.extract("epoch", func.clock_timestamp()))).scalar_one())
    return time.time()


# Actual sends stay twice the hard minimum interval apart, and never less than the interval
# plus SEND_SLIP of real time: what comes between the pacing and Nexudus's clock (a sender or
# a receiver descheduled on a busy machine, the network) takes real seconds, which a sandbox's
# sped-up clock does not shorten. At speed 1 the doubled interval is the larger (200 ms).
SEND_GAP_MARGIN = 2.0
SEND_SLIP = 0.05
REQUEST_BURST = 2  # requests that may follow one another closer than the spacing (the hard gap holds)


@dataclass(frozen=True, slots=True)
class Spacing:
    """Seconds between requests, between writes and between actual sends; the minute length."""

    request: float
    write: float
    send: float
    minute: float
    request_burst: float = 0.0  # how early a request may come before ``next_request_at``

    @classmethod
    def of(cls, limits: NexudusLimits) -> Spacing:
        """The spacings; with a burst of b, a window of a minute holds at most minute/request + b requests.

        So the request spacing is a minute over the limit less the b − 1 extra ones: with
        120 a minute, two requests may come back to back and still no minute sees 121.
        """
        minute = 60.0 / limits.clock_speed
        hard_gap = limits.min_interval_ms / 1000 / limits.clock_speed
        extra = min(REQUEST_BURST, limits.requests_per_minute) - 1
        per_request = max(hard_gap, minute / (limits.requests_per_minute - extra)) / limits.safety
        return cls(
            request=per_request,
            write=minute / limits.writes_per_minute / limits.safety,
            send=max(hard_gap * SEND_GAP_MARGIN, hard_gap + SEND_SLIP) if hard_gap > 0 else 0.0,
            minute=minute,
            request_burst=per_request * extra,
        )


def _ensure_statement(postgres: bool) -> Any:
    dialect_insert = postgresql.insert if postgres else sqlite.insert
    return (
        dialect_insert(NexudusAccount)
        .values(
            account=bindparam("_account", type_=String()),
            next_request_at=0.0,
            next_write_at=0.0,
            blocked_until=0.0,
            last_sent_at=0.0,
            updated_at=bindparam("_at", type_=NexudusAccount.__table__.c["updated_at"].type),
        )
        .on_conflict_do_nothing(index_elements=["account"])
    )


_ENSURE_ACCOUNT = per_dialect(_ensure_statement)


def ensure_account(session: Session | Unit, account: str) -> None:
    """The account's budget row, made on its first use (nothing if it exists)."""
    as_unit(session).execute(_ENSURE_ACCOUNT, {"_account": account, "_at": utcnow()})


def lock_account(session: Session, account: str) -> NexudusAccount:
    """The account's row, locked until the transaction ends (created on first use).

    The row nearly always exists: lock it in one round trip, insert only when missing.
    """
    params = {"_account": account}
    row = session.execute(_LOCK_ACCOUNT, params).scalar_one_or_none()
    if row is not None:
        return row
    ensure_account(session, account)
    return session.execute(_LOCK_ACCOUNT, params).scalar_one()


def holding_account(account: str) -> list[Step]:
    """The account's row locked until the transaction ends, as steps sent with what follows.

    For a caller that needs the lock, not the row: the row is made first if missing
    (an insert that finds it does nothing and takes no lock of its own), then locked,
    and neither answer is read (:func:`leadrelay.driver.execute_together`). On SQLite,
    a dispatch's and a claim's turn at the account's room (``worker.dispatch.holding_room``).
    """
    return [(_ENSURE_ACCOUNT, {"_account": account, "_at": utcnow()}), (_HOLD_ACCOUNT, {"_account": account})]


# built once: they run on every claim and dispatch
_LOCK_ACCOUNT = (
    select(NexudusAccount).where(NexudusAccount.account == bindparam("_account")).with_for_update()
)
_HOLD_ACCOUNT = (
    select(NexudusAccount.account).where(NexudusAccount.account == bindparam("_account")).with_for_update()
)


@dataclass(frozen=True, slots=True)
class Slot:
    wait: float
    at: float | None  # None: not reserved (the wait was longer than allowed)


class LedgerBudget(ABC):
    """The account's budget in the ledger (:class:`leadrelay.nexudus.client.Budget`).

    Two implementations of one contract (``tests/budget/test_budget.py`` runs the
    same cases on both): :class:`StatementBudget` on Postgres, each decision one
    statement; :class:`LockingBudget` anywhere else (the embedded SQLite), the same
    decision in Python under the account's lock. :func:`ledger_budget` picks one.
    """

    def __init__(self, sessions: sessionmaker[Session], account: str, limits: NexudusLimits) -> None:
        self._sessions = sessions
        self._account = account
        self._limits = limits
        self._spacing = Spacing.of(limits)

    def acquire(self, *, write: bool, max_wait: float) -> float:
        return self.reserve(write=write, max_wait=max_wait).wait

    @abstractmethod
    def reserve(self, *, write: bool, max_wait: float) -> Slot:
        """The next slot; reserved (``at`` set, on the database clock) only if within ``max_wait``."""

    @abstractmethod
    def pace_send(self) -> float:
        """Record a send happening now; seconds to wait first if another just went out."""

    @abstractmethod
    def penalise(self, seconds: float) -> None:
        """Nexudus said wait: nobody sends for this account until then."""

    def _caps(self) -> tuple[float, float, float]:
        """Requests per hour, per day and writes per day, with the safety margin."""
        limits = self._limits
        return (
            limits.requests_per_hour * limits.safety,
            limits.requests_per_day * limits.safety,
            limits.writes_per_day * limits.safety,
        )


class StatementBudget(LedgerBudget):
    """Postgres: a reservation, a send and a penalty are one statement each (:mod:`leadrelay.statements`).

    A reservation runs :data:`~leadrelay.statements.RESERVE` on an autocommit
    connection; in the rare case it could not trust its usage sums (it waited for
    the lock while others reserved, near a cap), the same statement runs again
    after this transaction took the account's lock, and then it always can.
    """

    def reserve(self, *, write: bool, max_wait: float) -> Slot:
        spacing = self._spacing
        per_hour, per_day, writes_per_day = self._caps()
        params = {
            "account": self._account,
            "minute": spacing.minute,
            "write": write,
            "max_wait": max_wait,
            "request_gap": spacing.request,
            "request_burst": spacing.request_burst,
            "write_gap": spacing.write,
            "per_hour": per_hour,
            "per_day": per_day,
            "writes_per_day": writes_per_day,
            "slack": CAP_SLACK,
        }
        row = self._run(RESERVE, params)
        if not row[_FRESH]:
            with transaction(self._sessions) as session:
                lock_account(session, self._account)  # the statement's snapshot now follows the lock
                row = SessionUnit(session).execute(RESERVE, params)[0]
            if not row[_FRESH]:
                raise RuntimeError(
                    "the budget's reservation could not see the usage under the account's lock"
                )
        now, start, _, ok = row
        return Slot(wait=start - now, at=start if ok else None)

    def pace_send(self) -> float:
        if self._spacing.send <= 0:
            return 0.0
        send_at, now = self._run(PACE, {"account": self._account, "gap": self._spacing.send})
        return max(0.0, float(send_at - now))  # both float8: float() tells mypy, changes nothing

    def penalise(self, seconds: float) -> None:
        self._run(PENALISE, {"account": self._account, "seconds": seconds})

    def _run(self, statement: Any, params: dict[str, Any]) -> Any:
        """``statement`` as a unit of its own (autocommit); the account's row is made on first use."""
        with unit(self._sessions, autocommit=True) as work:
            rows = work.execute(statement, params)
            if not rows:
                ensure_account(work, self._account)
                rows = work.execute(statement, params)
        return rows[0]


class LockingBudget(LedgerBudget):
    """Any database (the embedded SQLite): lock the account's row, decide in Python, commit."""

    def reserve(self, *, write: bool, max_wait: float) -> Slot:
        with transaction(self._sessions) as session:
            row = lock_account(session, self._account)
            now = db_clock(session)
            start = max(now, row.next_request_at - self._spacing.request_burst, row.blocked_until)
            if write:
                start = max(start, row.next_write_at)
            start = max(start, self._cap_wait(session, now, write=write))
            wait = start - now
            if wait > max_wait:
                return Slot(wait=wait, at=None)
            row.next_request_at = max(row.next_request_at, start) + self._spacing.request
            if write:
                row.next_write_at = start + self._spacing.write
            row.updated_at = utcnow()
            self._count(session, start, write=write)
            return Slot(wait=wait, at=start)

    def pace_send(self) -> float:
        if self._spacing.send <= 0:
            return 0.0
        with transaction(self._sessions) as session:
            row = lock_account(session, self._account)
            now = db_clock(session)
            send_at = max(now, row.last_sent_at + self._spacing.send)
            row.last_sent_at = send_at
            return send_at - now

    def penalise(self, seconds: float) -> None:
        with transaction(self._sessions) as session:
            row = lock_account(session, self._account)
            row.blocked_until = max(row.blocked_until, db_clock(session) + seconds)

    def _minute(self, at: float) -> int:
        return math.floor(at / self._spacing.minute)

    def _cap_wait(self, session: Session, now: float, *, write: bool) -> float:
        """When the hourly/daily caps allow one more request (``now`` if they do)."""
        per_hour, per_day, writes_per_day = self._caps()
        current = self._minute(now)
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
        if hour_requests + 1 > per_hour and oldest_hour is not None:
            until = max(until, (oldest_hour + 61) * self._spacing.minute)
        over_day = day_requests + 1 > per_day or (write and day_writes + 1 > writes_per_day)
        if over_day and oldest_day is not None:
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


def ledger_budget(sessions: sessionmaker[Session], account: str, limits: NexudusLimits) -> LedgerBudget:
    """The account's budget on this ledger: one statement per decision on Postgres, else under a lock."""
    if sessions.kw["bind"].dialect.name == "postgresql":
        return StatementBudget(sessions, account, limits)
    return LockingBudget(sessions, account, limits)


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


def budget_for(runtime: Runtime, account: str) -> LedgerBudget:
    return ledger_budget(runtime.sessions, account, runtime.routing.accounts[account].limits)
