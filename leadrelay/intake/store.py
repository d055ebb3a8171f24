"""Intake's storage: a raw inbound item, stored once per intake key, committed before it is answered.

One interface, :class:`IntakeStore`, with one set of statements
(:data:`leadrelay.statements.INBOUND_INSERT` and ``INBOUND_ID``: ``INSERT … ON
CONFLICT (intake_key) DO NOTHING RETURNING id``, then the holder's id when the key
was known), executed one of two ways:

* :func:`record_inbound` through a SQLAlchemy session, on SQLite and Postgres
  (the IMAP poller, the tests, and the embedded demo's door via
  :class:`SessionIntakeStore`); the caller owns the transaction;
* :class:`PoolIntakeStore`, the receiver's hot path on Postgres: the same
  statements compiled once to psycopg text and run on a
  ``psycopg_pool.AsyncConnectionPool`` in autocommit, on the event loop — one
  round trip, durable when it answers, no ORM, no thread hop, no pre-ping
  (psycopg prepares the statement server-side after a few runs). A connection
  found dead (a restarted Postgres) is dropped with the other dead idle ones and
  the statement tried once more: it is idempotent, the intake key decides.

:class:`Publisher` puts the ids of committed leads on the broker in batches,
behind the answer: the 202 follows the commit, and one worker-thread call and
one producer serve every id that arrived while the last batch was sent. A crash
between commit and publish loses nothing: the row is ``received`` with
``enqueued_at`` = its receipt, and the sweeper re-enqueues it once
``requeue_after_seconds`` have passed.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import psycopg
import structlog
from anyio import to_thread
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from leadrelay.db import statement_commits, transaction, utcnow
from leadrelay.statements import INBOUND_ID, INBOUND_INSERT, DriverStatement

log = structlog.get_logger(__name__)

CONTENT_TYPE_CHARS = 200  # leads.content_type: a sender's longer header is cut, never refused
APPLICATION_NAME = "leadrelay-intake"  # the pool's connections, as pg_stat_activity shows them
POOL_TIMEOUT = 10.0  # seconds a webhook waits for a ledger connection before it fails (500)
# seconds a batch waits for more ids before it goes: no sender waits for it, and batches of one
# or two ids cost the receiver ~1.4 ms of CPU a webhook at 500/s (PROFILE.md, seventh pass)
LINGER_SECONDS = 0.02
MOST_WAITING = 50_000  # ids waiting for the broker in one process; past it the sweeper publishes them


@dataclass(frozen=True, slots=True)
class Intake:
    lead_id: int
    duplicate: bool  # the intake key was seen before: nothing new was stored


@dataclass(frozen=True, slots=True)
class Inbound:
    """A raw inbound item as it arrived, before anything is read from it."""

    channel: str
    source: str  # webhook | email | admin
    intake_key: str  # what makes a re-delivery recognisable
    body: bytes
    content_type: str | None
    meta: dict[str, Any] | None = None

    def values(self, now: datetime | None = None) -> dict[str, Any]:
        """The values of :data:`~leadrelay.statements.INBOUND_INSERT`."""
        return {
            "channel": self.channel,
            "source": self.source,
            "intake_key": self.intake_key,
            "at": now or utcnow(),
            "content_type": self.content_type[:CONTENT_TYPE_CHARS] if self.content_type else None,
            "body": self.body,
            "sha256": hashlib.sha256(self.body).hexdigest(),
            "meta": self.meta or {},
        }


def record_inbound(
    session: Session,
    *,
    channel: str,
    source: str,
    intake_key: str,
    body: bytes,
    content_type: str | None,
    meta: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> Intake:
    """Store a raw inbound item once per intake key (a re-delivery is recognised); no commit."""
    item = Inbound(channel, source, intake_key, body, content_type, meta)
    conn = session.connection()
    new_id = conn.execute(INBOUND_INSERT(session), item.values(now)).scalar_one_or_none()
    if new_id is not None:
        return Intake(lead_id=new_id, duplicate=False)
    existing = conn.execute(INBOUND_ID, {"intake_key": intake_key}).scalar_one()
    return Intake(lead_id=existing, duplicate=True)


class IntakeStore(Protocol):
    """What the webhook door needs of the ledger."""

    async def open(self) -> None:
        """Called once the process serves (after any fork), before the first :meth:`record`."""
        ...

    async def record(self, item: Inbound, *, now: datetime | None = None) -> tuple[Intake, bool]:
        """Store ``item`` once per intake key, committed when this returns.

        Returns the intake and whether its id must be published: a new row, or one
        that a statement cut short by a lost connection may have committed.
        """
        ...

    async def execute(self, statements: Sequence[tuple[Any, Mapping[str, Any]]]) -> None:
        """Run each ``(statement, values)`` in one transaction: a side job's write (the door log)."""
        ...

    async def close(self) -> None: ...


class SessionIntakeStore:
    """:func:`record_inbound` in its own commit, in a worker thread: any ledger (the embedded SQLite)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    async def open(self) -> None:
        return None

    async def record(self, item: Inbound, *, now: datetime | None = None) -> tuple[Intake, bool]:
        intake = await to_thread.run_sync(self._record, item, now)
        return intake, not intake.duplicate

    def _record(self, item: Inbound, now: datetime | None) -> Intake:
        with statement_commits(self.sessions) as session:
            return record_inbound(
                session,
                channel=item.channel,
                source=item.source,
                intake_key=item.intake_key,
                body=item.body,
                content_type=item.content_type,
                meta=item.meta,
                now=now,
            )

    async def execute(self, statements: Sequence[tuple[Any, Mapping[str, Any]]]) -> None:
        await to_thread.run_sync(self._execute, statements)

    def _execute(self, statements: Sequence[tuple[Any, Mapping[str, Any]]]) -> None:
        with transaction(self.sessions) as session:
            for statement, values in statements:
                session.execute(statement, dict(values))

    async def close(self) -> None:
        return None


_INSERT = DriverStatement(INBOUND_INSERT.build(True))
_EXISTING = DriverStatement(INBOUND_ID)


def conninfo(engine: Engine) -> str:
    """The libpq URL of a SQLAlchemy Postgres engine (``postgresql+psycopg://`` → ``postgresql://``)."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


class PoolIntakeStore:
    """:func:`record_inbound`'s statements on a psycopg async pool in autocommit: Postgres only.

    The pool is made and opened by :meth:`open` (the app's lifespan, in the process
    that serves), up to ``size`` connections, opened on demand and closed again
    after ``max_idle``; a process forked after that makes its own on first use.
    """

    def __init__(self, url: str, *, size: int, timeout: float = POOL_TIMEOUT) -> None:
        self.url = url
        self.size = size
        self.timeout = timeout
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] | None = None
        self._pid = 0

    async def open(self) -> None:
        pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
            self.url,
            min_size=1,
            max_size=self.size,
            kwargs={"autocommit": True, "application_name": APPLICATION_NAME},
            timeout=self.timeout,
            open=False,
            name="intake",
        )
        await pool.open(wait=False)
        self._pool, self._pid = pool, os.getpid()

    async def _current(self) -> AsyncConnectionPool[psycopg.AsyncConnection[Any]]:
        if self._pool is None or self._pid != os.getpid():  # never opened, or the parent's
            await self.open()
        assert self._pool is not None
        return self._pool

    async def record(self, item: Inbound, *, now: datetime | None = None) -> tuple[Intake, bool]:
        params = _INSERT.params(item.values(now))
        existing = _EXISTING.params({"intake_key": item.intake_key})
        pool = await self._current()
        retried = False
        while True:
            conn = await pool.getconn()  # not pool.connection(): its context manager cost ~25 µs a call
            try:
                intake = await self._record(conn, params, existing)
            except psycopg.OperationalError:
                if retried or not conn.broken:
                    raise
                # died while idle: Postgres restarted, and took the other idle ones with it
                retried = True
                log.warning("ledger_connection_lost", retry=True)
            else:
                return intake, not intake.duplicate or retried
            finally:
                await pool.putconn(conn)  # a broken one is dropped, and replaced
            await pool.check()  # the other idle ones

    async def _record(
        self, conn: psycopg.AsyncConnection[Any], params: dict[str, Any], existing: dict[str, Any]
    ) -> Intake:
        row = await (await conn.execute(_INSERT.sql, params)).fetchone()
        if row is not None:
            return Intake(lead_id=int(row[0]), duplicate=False)
        cur = await conn.execute(_EXISTING.sql, existing)
        found = await cur.fetchone()
        assert found is not None
        return Intake(lead_id=int(found[0]), duplicate=True)

    async def execute(self, statements: Sequence[tuple[Any, Mapping[str, Any]]]) -> None:
        """One transaction on a pooled connection; not retried (a side job: its caller logs a failure)."""
        pool = await self._current()
        async with pool.connection() as conn, conn.transaction():
            for statement, values in statements:
                driver = _driver(statement)
                await conn.execute(driver.sql, driver.params(values))

    async def close(self) -> None:
        if self._pool is not None and self._pid == os.getpid():
            await self._pool.close()
        self._pool = None


@functools.cache
def _driver(statement: Any) -> DriverStatement:
    """A side job's statement as psycopg text, compiled once."""
    return DriverStatement(statement)


class Publisher:
    """Publishes committed lead ids in batches, behind the answer.

    :meth:`submit` queues an id and returns at once: the sender's 202 follows the
    commit (DESIGN.md §1), not the broker. One task drains the queue: after
    ``linger`` seconds for the batch to fill, one worker-thread call of ``send``
    (the synchronous publish, ``worker.queue.announce``: one message for the batch,
    which a worker fans out to one per lead; it logs a broker failure and never raises) for
    every id that arrived meanwhile. A broker that is down or slow therefore never
    holds a webhook up; what it fails to take, and what a killed process had not
    sent yet, the sweeper publishes once ``requeue_after_seconds`` have passed (the
    rows are ``received``, ``enqueued_at`` their receipt). :meth:`close` sends what
    waits at the receiver's shutdown, for a bounded time.
    """

    def __init__(
        self,
        send: Callable[[list[int]], int],
        *,
        linger: float = LINGER_SECONDS,
        most_waiting: int = MOST_WAITING,
    ) -> None:
        self.send = send
        self.linger = linger
        self.most_waiting = most_waiting
        self._waiting: list[int] = []
        self._task: asyncio.Task[None] | None = None
        self._left = 0  # ids left to the sweeper since the queue was last full

    def submit(self, lead_id: int) -> None:
        """Queue ``lead_id`` for the next batch; never waits, never raises."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain())
        if len(self._waiting) >= self.most_waiting:  # the broker has been unreachable for a while
            if not self._left:  # once per episode, not once per webhook
                log.warning("publish_queue_full", waiting=len(self._waiting), left_to="sweeper")
            self._left += 1
            return  # committed: the sweeper publishes it
        if self._left:
            log.warning("publish_queue_drained", left_to_sweeper=self._left)
            self._left = 0
        self._waiting.append(lead_id)

    async def flush(self) -> None:
        """Return once every id submitted so far was handed to ``send``."""
        while self._task is not None:
            await asyncio.shield(self._task)

    async def close(self, timeout: float) -> None:
        """Flush for at most ``timeout`` seconds, then give up the rest (the sweeper's)."""
        try:
            await asyncio.wait_for(self.flush(), timeout)
        except TimeoutError:
            unsent = len(self._waiting)
            if self._task is not None:  # a send stuck on the broker: its thread is abandoned
                self._task.cancel()
            log.warning("publish_abandoned", unsent=unsent, left_to="sweeper")

    async def _drain(self) -> None:
        try:
            while self._waiting:
                await asyncio.sleep(self.linger)  # let the batch fill: its fixed cost is most of a small one
                batch, self._waiting = self._waiting, []
                try:
                    await to_thread.run_sync(self.send, batch, abandon_on_cancel=True)
                except Exception as exc:  # the rows are committed: the sweeper publishes them later
                    log.warning("enqueue_failed", error=type(exc).__name__, sent=0)
        finally:
            self._task = None
