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
  ``psycopg_pool.AsyncConnectionPool`` in autocommit, on the event loop — no ORM,
  no thread hop, no pre-ping (psycopg prepares the statement server-side after a
  few runs). Webhooks that arrive while the store's batches are in flight go
  together in the next one (a group commit): one pipeline of their INSERTs, one
  commit, one round trip, and each is answered once its batch has committed. A
  batch of one is the single INSERT it always was. A connection found dead (a
  restarted Postgres) is dropped with the other dead idle ones and the batch
  tried once more: it is idempotent, the intake key decides. A batch that
  Postgres refuses (one item it cannot store) stored nothing, and its items are
  tried one by one, so that only that item fails.

The ids of committed leads go to the broker through :mod:`leadrelay.intake.publisher`.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
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
from leadrelay.statements import INBOUND_ID, INBOUND_IDS, INBOUND_INSERT, DriverStatement, inbound_insert_rows

log = structlog.get_logger(__name__)

CONTENT_TYPE_CHARS = 200  # leads.content_type: a sender's longer header is cut, never refused
APPLICATION_NAME = "leadrelay-intake"  # the pool's connections, as pg_stat_activity shows them
POOL_TIMEOUT = 10.0  # seconds a batch waits for a ledger connection before its webhooks fail (500)
ANSWER_SECONDS = 30.0  # seconds a batch may take (a stuck statement): then its webhooks get a 500
MOST_ROWS = 100  # items in one batch (one pipeline, one commit)
MOST_FLUSHES = 2  # batches in flight at once, per receiver process: the others gather meanwhile


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
_HELD = DriverStatement(INBOUND_IDS)


@dataclass(frozen=True, slots=True)
class _Waiting:
    """An item waiting for its batch: its intake key, its INSERT's values, and its request's answer."""

    key: str
    params: dict[str, Any]
    answer: asyncio.Future[tuple[Intake, bool]]


async def _insert(conn: psycopg.AsyncConnection[Any], batch: list[_Waiting]) -> list[Intake | Exception]:
    """Store each item once per intake key; the intakes in the batch's order. Committed when it returns.

    One item is one INSERT; more are one INSERT of many rows, in the order of their
    keys (two batches in flight wait for each other's keys in one order, never in a
    cycle). Either is one statement in autocommit, so a batch commits whole or not
    at all. An item whose key the ledger knew, or that an earlier item of the batch
    carried, is a duplicate of the row that holds the key, read in one more
    statement; should that read fail, only those items fail (what was stored stands).
    """
    if len(batch) == 1:
        row = await (await conn.execute(_INSERT.sql, batch[0].params)).fetchone()
        new = {} if row is None else {batch[0].key: int(row[0])}
    else:
        firsts: dict[str, dict[str, Any]] = {}  # each key's first item
        for waiting in batch:
            firsts.setdefault(waiting.key, waiting.params)
        keys = sorted(firsts)
        values = {f"{name}_{n}": value for n, key in enumerate(keys) for name, value in firsts[key].items()}
        cur = await conn.execute(_insert_rows(len(keys)), values)
        new = {key: int(lead_id) for lead_id, key in await cur.fetchall()}
    held = await _held(conn, list(dict.fromkeys(w.key for w in batch if w.key not in new)))
    intakes: list[Intake | Exception] = []
    for waiting in batch:
        lead_id = new.pop(waiting.key, None)  # only the key's first item made the row
        if lead_id is not None:
            held[waiting.key] = lead_id
            intakes.append(Intake(lead_id=lead_id, duplicate=False))
            continue
        holder = held.get(waiting.key, LookupError("the row holding this intake key is gone"))
        intakes.append(holder if isinstance(holder, Exception) else Intake(lead_id=holder, duplicate=True))
    return intakes


async def _held(conn: psycopg.AsyncConnection[Any], keys: list[str]) -> dict[str, int | Exception]:
    """The ids of the rows holding ``keys``; the read's error for each, unless the connection died."""
    if not keys:
        return {}
    try:
        cur = await conn.execute(_HELD.sql, _HELD.params({"keys": keys}))
        return {key: int(lead_id) for lead_id, key in await cur.fetchall()}
    except psycopg.Error as exc:
        if conn.broken:
            raise  # tried again on a fresh connection, every item then published
        return dict.fromkeys(keys, exc)


@functools.cache
def _insert_rows(count: int) -> str:
    """The SQL of an INSERT of ``count`` items, compiled once per count (at most :data:`MOST_ROWS`).

    Its parameters are the single INSERT's, already converted by :data:`_INSERT`, each
    name suffixed with its row's number.
    """
    return DriverStatement(inbound_insert_rows(count)).sql


def _answer_all(batch: list[_Waiting], error: BaseException) -> None:
    for waiting in batch:
        if not waiting.answer.done():
            waiting.answer.set_exception(error)


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
        self.flushes = min(size, MOST_FLUSHES)
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] | None = None
        self._pid = 0
        self._queue: list[_Waiting] = []  # items for the next batch
        self._flushing = 0  # batches in flight
        self._tasks: set[asyncio.Task[None]] = set()

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
        if self._pid != os.getpid():  # a parent's batches (a fork) are not this process's
            self._queue, self._flushing, self._tasks = [], 0, set()
        self._pool, self._pid = pool, os.getpid()

    async def _current(self) -> AsyncConnectionPool[psycopg.AsyncConnection[Any]]:
        if self._pool is None or self._pid != os.getpid():  # never opened, or the parent's
            await self.open()
        assert self._pool is not None
        return self._pool

    async def record(self, item: Inbound, *, now: datetime | None = None) -> tuple[Intake, bool]:
        pool = await self._current()
        waiting = _Waiting(
            item.intake_key, _INSERT.params(item.values(now)), asyncio.get_running_loop().create_future()
        )
        self._queue.append(waiting)
        if self._flushing < self.flushes:
            self._flushing += 1
            task = asyncio.get_running_loop().create_task(self._flush(pool))
            self._tasks.add(task)  # the loop keeps only a weak reference
            task.add_done_callback(self._tasks.discard)
        return await waiting.answer

    async def _flush(self, pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]]) -> None:
        """Store what waits, a batch at a time, until nothing does."""
        batch: list[_Waiting] = []
        try:
            while self._queue:
                batch, self._queue = self._queue[:MOST_ROWS], self._queue[MOST_ROWS:]
                batch = [waiting for waiting in batch if not waiting.answer.done()]  # not a sender gone
                if batch:
                    await self._store(pool, batch)
        except BaseException:  # cancelled (the receiver stops): nobody is left waiting for ever
            last = self._flushing == 1  # else the other batch in flight takes the queue on
            for waiting in (*batch, *(self._queue if last else ())):
                waiting.answer.cancel()
            if last:
                self._queue = []
            raise
        finally:
            self._flushing -= 1

    async def _store(
        self, pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]], batch: list[_Waiting]
    ) -> None:
        """Answer every item of ``batch``: its intake, or the error that kept it from the ledger."""
        try:
            async with asyncio.timeout(ANSWER_SECONDS):  # a stuck statement holds no batch for ever
                intakes, retried = await self._on_connection(pool, lambda conn: _insert(conn, batch))
        except TimeoutError:  # it may commit yet: a retry is then a duplicate, the sweeper publishes it
            _answer_all(batch, psycopg.OperationalError(f"the ledger took over {ANSWER_SECONDS:.0f} s"))
        except psycopg.errors.TransactionRollback as exc:  # a deadlock or a serialization failure
            await self._one_by_one(pool, batch, exc)
        except psycopg.OperationalError as exc:  # no ledger (or lost twice): nothing to try item by item
            _answer_all(batch, exc)
        except psycopg.Error as exc:  # refused: the batch stored nothing
            await self._one_by_one(pool, batch, exc)
        except Exception as exc:  # a bug: each request answers 500 and logs it
            _answer_all(batch, exc)
        else:
            for waiting, intake in zip(batch, intakes, strict=True):
                if waiting.answer.done():  # its request was cancelled meanwhile
                    continue
                if isinstance(intake, Exception):
                    waiting.answer.set_exception(intake)
                else:
                    waiting.answer.set_result((intake, not intake.duplicate or retried))

    async def _one_by_one(
        self, pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]], batch: list[_Waiting], error: Exception
    ) -> None:
        """Each item of a batch that stored nothing, alone: only one Postgres cannot store fails."""
        if len(batch) == 1:
            _answer_all(batch, error)
            return
        for waiting in batch:
            await self._store(pool, [waiting])

    async def _on_connection(
        self,
        pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]],
        run: Callable[[psycopg.AsyncConnection[Any]], Awaitable[list[Intake | Exception]]],
    ) -> tuple[list[Intake | Exception], bool]:
        """``run`` on a pooled connection, again on a fresh one if that one was dead; and whether it was."""
        retried = False
        while True:
            conn = await pool.getconn()  # not pool.connection(): its context manager cost ~25 µs a call
            try:
                return await run(conn), retried
            except psycopg.OperationalError:
                if retried or not conn.broken:
                    raise
                # died while idle: Postgres restarted, and took the other idle ones with it
                retried = True
                log.warning("ledger_connection_lost", retry=True)
            finally:
                await pool.putconn(conn)  # a broken one is dropped, and replaced
            await pool.check()  # the other idle ones

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
