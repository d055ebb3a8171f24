"""The receiver's hot path on Postgres: the raw item's commit and its publish, on the event loop.

A webhook costs one statement (``INSERT … ON CONFLICT DO NOTHING RETURNING id``,
autocommit: one round trip, durable when it answers) and one broker message. Both
run here without a worker thread per request:

* :class:`InboundWriter` keeps a few psycopg ``AsyncConnection`` objects in
  autocommit and runs a fixed, server-side prepared statement (psycopg prepares
  it after a few executions) — no ORM, no thread hop, no pre-ping. A connection
  that turns out to be dead (a restarted Postgres) is dropped and the statement
  tried once more on a fresh one: it is idempotent, the intake key decides.
* :class:`Publisher` puts the ids of committed leads on the broker in batches: a
  request waits for its id's batch (so 202 still follows the publish, as before),
  while one worker-thread call and one producer serve every id that arrived
  meanwhile. A crash between commit and publish loses nothing: the row is
  ``received`` with ``enqueued_at`` = its receipt, and the sweeper re-enqueues it
  once ``requeue_after_seconds`` have passed.

SQLite (the embedded demo) keeps the synchronous path through
:func:`leadrelay.ledger.record_inbound`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

import psycopg
import structlog
from anyio import to_thread
from psycopg.types.json import Jsonb
from sqlalchemy import Engine

from leadrelay.db import utcnow
from leadrelay.ledger import CONTENT_TYPE_CHARS, Intake
from leadrelay.models import LeadState

log = structlog.get_logger(__name__)

INSERT = (
    "INSERT INTO leads (channel, source, intake_key, received_at, content_type, raw_body, raw_sha256,"
    " raw_meta, state, state_changed_at, attempts, next_attempt_at, enqueued_at)"
    " VALUES (%(channel)s, %(source)s, %(key)s, %(at)s, %(content_type)s, %(body)s, %(sha)s,"
    " %(meta)s, %(state)s, %(at)s, 0, %(at)s, %(at)s)"
    " ON CONFLICT (intake_key) DO NOTHING RETURNING id"
)
EXISTING = "SELECT id FROM leads WHERE intake_key = %(key)s"


def conninfo(engine: Engine) -> str:
    """The libpq URL of a SQLAlchemy Postgres engine (``postgresql+psycopg://`` → ``postgresql://``)."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


class InboundWriter:
    """``record_inbound`` for Postgres, as a coroutine on a small pool of async connections."""

    def __init__(self, url: str, *, size: int) -> None:
        self.url = url
        self.size = size
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._open = 0
        self._freed: asyncio.Condition | None = None

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(self.url, autocommit=True)

    async def _acquire(self) -> tuple[psycopg.AsyncConnection[Any], bool]:
        """A connection, and whether it was pooled (it may have died while idle)."""
        if self._freed is None:
            self._freed = asyncio.Condition()
        async with self._freed:
            while not self._idle and self._open >= self.size:
                await self._freed.wait()
            if self._idle:
                return self._idle.pop(), True
            self._open += 1
        try:
            return await self._connect(), False
        except BaseException:
            await self._drop(None)
            raise

    async def _release(self, conn: psycopg.AsyncConnection[Any]) -> None:
        assert self._freed is not None
        async with self._freed:
            self._idle.append(conn)
            self._freed.notify()

    async def _drop(self, conn: psycopg.AsyncConnection[Any] | None) -> None:
        if conn is not None:
            with contextlib.suppress(Exception):  # already broken
                await conn.close()
        assert self._freed is not None
        async with self._freed:
            self._open -= 1
            self._freed.notify()

    async def record(
        self,
        *,
        channel: str,
        source: str,
        intake_key: str,
        body: bytes,
        content_type: str | None,
        meta: dict[str, Any] | None = None,
        now: datetime | None = None,
    ) -> tuple[Intake, bool]:
        """Store a raw inbound item once per intake key; committed when this returns.

        Returns the intake and whether its id must be published: a new row, or one
        that a statement cut short by a lost connection may have committed.
        """
        params = {
            "channel": channel,
            "source": source,
            "key": intake_key,
            "at": now or utcnow(),
            "content_type": content_type[:CONTENT_TYPE_CHARS] if content_type else None,
            "body": body,
            "sha": hashlib.sha256(body).hexdigest(),
            "meta": Jsonb(meta or {}),
            "state": LeadState.received.value,
        }
        retried = False
        while True:
            conn, pooled = await self._acquire()
            try:
                cur = await conn.execute(INSERT, params)
                row = await cur.fetchone()
                if row is None:
                    cur = await conn.execute(EXISTING, params)
                    found = await cur.fetchone()
                    assert found is not None
                    intake = Intake(lead_id=int(found[0]), duplicate=True)
                else:
                    intake = Intake(lead_id=int(row[0]), duplicate=False)
            except psycopg.OperationalError:
                await self._drop(conn)
                if pooled and not retried and conn.broken:
                    # died while idle: Postgres restarted, and took the other idle ones with it
                    retried = True
                    log.warning("ledger_connection_lost", retry=True)
                    await self._forget_idle()
                    continue
                raise
            except BaseException:
                await self._drop(conn)
                raise
            await self._release(conn)
            return intake, not intake.duplicate or retried

    async def _forget_idle(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await self._drop(conn)

    async def close(self) -> None:
        await self._forget_idle()


class Publisher:
    """Publishes committed lead ids in batches; :meth:`publish` returns once its batch was sent.

    ``send`` is the synchronous enqueue (``worker.queue.enqueue``: one producer, the
    worker's task name and message format; it logs a broker failure and never
    raises). It runs in a worker thread, one call per batch: every id that arrives
    while a batch is being sent goes into the next one.
    """

    def __init__(self, send: Callable[[list[int]], int]) -> None:
        self.send = send
        self._waiting: list[tuple[int, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None

    async def publish(self, lead_id: int) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((lead_id, done))
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain())
        await done

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    await to_thread.run_sync(self.send, [lead_id for lead_id, _ in batch])
                except Exception as exc:  # the rows are committed: the sweeper publishes them later
                    log.warning("enqueue_failed", error=type(exc).__name__, sent=0)
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)
        finally:
            self._task = None
