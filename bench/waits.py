"""What the bench database's backends wait on while a phase runs: ``pg_stat_activity``, sampled.

A thread reads ``pg_stat_activity`` every 20 ms from its own connection and adds up,
for each wait event, how many of the bench database's client backends were waiting
on it; divided by the samples, that is how many backends wait on it on average
(0.25: a quarter of the time, one backend). ``Lock`` events are a transaction
waiting for another one's row or advisory lock (``transactionid``: a row lock);
``IO:WALSync``, ``IO:WALWrite`` and ``LWLock:WALWrite`` are a commit waiting for
its flush to disk (its own, or another's it queues behind). Backends that are
active with no wait event are running. Used by the pipeline's section, for leadrelay and
for the delivery floor alike (where the seconds of a lead go besides CPU), and by
``bench.drain``, which shows them by statement (its first 60 characters).
"""

from __future__ import annotations

import collections
import threading
import time
from types import TracebackType

import psycopg

from bench.env import DB_NAME, PG_ADMIN_URL

_SAMPLE = """
SELECT coalesce(wait_event_type || ':' || wait_event, 'running'),
       left(regexp_replace(query, '\\s+', ' ', 'g'), 60)
FROM pg_stat_activity
WHERE datname = %s AND backend_type = 'client backend' AND state = 'active' AND pid <> pg_backend_pid()
"""
# a commit waits on its own flush (IO:WALSync, IO:WALWrite) or behind another's (LWLock:WALWrite)
SHOWN = {
    "running": ("running",),
    "WAL flush": ("IO:WALSync", "IO:WALWrite", "LWLock:WALWrite"),
    "row lock": ("Lock:transactionid", "Lock:tuple"),
    "advisory lock": ("Lock:advisory",),  # an account's room, a person's decisions
}


class Waits:
    """``with Waits() as waits: …`` then ``waits.average(event)`` or ``waits.summary()``."""

    def __init__(self, database: str = DB_NAME, interval: float = 0.02) -> None:
        self._database, self._interval = database, interval
        self._dsn = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
        self._counts: collections.Counter[str] = collections.Counter()
        self._statements: collections.Counter[tuple[str, str]] = collections.Counter()
        self._samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-waits", daemon=True)

    def __enter__(self) -> Waits:
        self._thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        with psycopg.connect(self._dsn, autocommit=True) as conn:
            while not self._stop.is_set():
                rows = conn.execute(_SAMPLE, (self._database,)).fetchall()
                self._counts.update(event for event, _ in rows)
                self._statements.update((event, statement) for event, statement in rows)
                self._samples += 1
                time.sleep(self._interval)

    def average(self, event: str) -> float:
        """Backends on ``event`` on average (``Lock`` alone: every lock wait event added up)."""
        if not self._samples:
            return 0.0
        if ":" in event or event == "running":
            return self._counts[event] / self._samples
        return sum(n for name, n in self._counts.items() if name.startswith(f"{event}:")) / self._samples

    def by_statement(self, top: int = 15) -> list[tuple[float, str, str]]:
        """(backends on average, event, the statement's first 60 characters), the largest first."""
        if not self._samples:
            return []
        found = self._statements.most_common(top)
        return [(n / self._samples, event, statement) for (event, statement), n in found]

    def summary(self) -> str:
        shown = ", ".join(f"{label} {sum(map(self.average, events)):.2f}" for label, events in SHOWN.items())
        return f"{shown} (Postgres backends on average)"
