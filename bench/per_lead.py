"""``python -m bench.per_lead [N] [--message M]``: what one lead costs the worker, in process.

N leads (default 300) are recorded in a fresh bench ledger and run through
``worker.pipeline.process`` one after another against the sandbox (limits off),
with a no-op enqueue so that the dispatch after the deliveries runs too. They run
in messages of M leads (default ``LEADRELAY_LEADS_PER_MESSAGE``, 8) as a task runs
a message of a backlog (``worker.tasks``): one pair of kept connections a message,
the accounts' dispatch once after its last lead; ``--message 1`` is a lead a
message, as the worker runs a lead that arrives alone. The first
20 warm the caches and are not counted; then the heap is frozen, as a worker's
is after its first tasks (``leadrelay.heap``: later collections do not walk
what start-up and warm-up made). Printed per lead: the wall time (what one
worker process's rate is bound by: its CPU and its waits), the worker's CPU (user
and system), the CPU of every Postgres process, the SQL statements and
transactions (SQLAlchemy events), the round trips to Postgres (statements plus
psycopg's BEGIN and COMMIT; statements sent together in psycopg's pipeline mode count
once), and the most frequent statements. Used for the
fifth pass in bench/PROFILE.md; the same code varies about ±4 ms of CPU a lead
between runs, so compare interleaved runs, never two single ones. Logging is
configured as ``leadrelay worker`` configures it, and the leads' log lines are
written to stderr as a worker writes them (their cost is part of a lead's):
``python -m bench.per_lead 2>/dev/null`` shows the figures alone.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import resource
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import psycopg._connection_base as psycopg_connection
from sqlalchemy import event

from bench import env, ledger, signed
from leadrelay import heap, logs
from leadrelay.db import kept_connections
from leadrelay.runtime import Runtime
from leadrelay.settings import get_settings
from leadrelay.worker.pipeline import dispatch_freed, process
from leadrelay.worker.queue import MESSAGE_MOST

WARM = 20


def postgres_cpu() -> float:
    """Seconds of CPU used so far by every process named ``postgres`` on this machine."""
    ticks = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() != "postgres":
                continue
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


class Counts:
    """Statements, transactions and BEGIN/COMMIT commands seen from now on."""

    def __init__(self, rt: Runtime) -> None:
        self.statements: collections.Counter[str] = collections.Counter()
        self.commits = 0
        self.commands = 0
        self.round_trips = 0  # every statement and command, except that a pipeline's statements are one
        self.pipelines = 0
        self._piped = False
        self._short: dict[str, str] = {}
        event.listen(rt.engine, "before_cursor_execute", self._statement)
        event.listen(rt.engine, "commit", self._commit)
        command, execute, pipeline = (
            psycopg_connection.BaseConnection._exec_command,
            psycopg.Cursor.execute,
            psycopg.Connection.pipeline,
        )

        def counted_command(conn: Any, *args: Any, **kwargs: Any) -> Any:
            self.commands += 1
            self.round_trips += 1  # in a pipeline too: psycopg waits for a BEGIN's answer there
            return command(conn, *args, **kwargs)

        def counted_execute(cursor: Any, *args: Any, **kwargs: Any) -> Any:
            self.round_trips += not self._piped
            return execute(cursor, *args, **kwargs)

        @contextlib.contextmanager
        def counted_pipeline(conn: Any) -> Iterator[Any]:
            self.pipelines += 1
            self.round_trips += 1
            self._piped = True
            try:
                with pipeline(conn) as p:
                    yield p
            finally:
                self._piped = False

        psycopg_connection.BaseConnection._exec_command = counted_command  # type: ignore[method-assign]
        psycopg.Cursor.execute = counted_execute  # type: ignore[method-assign,assignment]
        psycopg.Connection.pipeline = counted_pipeline  # type: ignore[method-assign,assignment]

    def _statement(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        short = self._short.get(statement)
        if short is None:  # a statement's text is built once and sent again and again: shortened once
            short = self._short[statement] = " ".join(statement.split())[:100]
        self.statements[short] += 1

    def _commit(self, conn: Any) -> None:
        self.commits += 1

    def clear(self) -> None:
        self.statements.clear()
        self.commits = self.commands = self.round_trips = self.pipelines = 0


def run(rt: Runtime, ids: list[int], *, message: int, owner: str) -> None:
    """The leads in messages of ``message``, each as ``worker.tasks`` runs one.

    What a task adds around it is left out: the broker, retries, the hand-on of a
    slow message, the log line a lead and the staff's notification.
    """
    for start in range(0, len(ids), message):
        freed: set[str] = set()
        with kept_connections(rt.sessions):
            for lead_id in ids[start : start + message]:
                process(rt, lead_id, owner=owner, enqueue=len, freed=freed)
            dispatch_freed(rt, freed, enqueue=len)


def main(count: int, message: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="leadrelay-per-lead-"))
    url, sandbox, _, _ = env.unlimited_delivery(work)
    try:
        ids = ledger.ingest(url, [signed.lead(n, tag="per-lead") for n in range(count)])
        rt = Runtime.load(get_settings())
        logs.configure()  # as `leadrelay worker` does
        counts = Counts(rt)
        run(rt, ids[:WARM], message=message, owner="bench-warm")
        heap.freeze_long_lived("bench.per_lead")  # as a worker's heap is, once its first tasks ran
        counts.clear()
        measured = ids[WARM:]
        before, pg_before = resource.getrusage(resource.RUSAGE_SELF), postgres_cpu()
        started = time.perf_counter()
        run(rt, measured, message=message, owner="bench")
        wall = time.perf_counter() - started
        after, pg_used = resource.getrusage(resource.RUSAGE_SELF), postgres_cpu() - pg_before
        rt.close()
    finally:
        sandbox.stop()
    n = len(measured)
    user, system = (after.ru_utime - before.ru_utime) / n, (after.ru_stime - before.ru_stime) / n
    statements = sum(counts.statements.values())
    print(f"the code at {env.measured_code()}")
    print(f"{n} leads in messages of {message}: {ledger.states(url)}")
    cpu = f"{1000 * (user + system):.2f} ms a lead (user {1000 * user:.2f}, system {1000 * system:.2f})"
    print(f"wall {1000 * wall / n:.2f} ms a lead (one process, one lead after another)")
    print(f"worker CPU {cpu}")
    print(f"Postgres CPU (all its processes) {1000 * pg_used / n:.2f} ms a lead")
    print(
        f"{statements / n:.1f} statements, {counts.commits / n:.1f} transactions, "
        f"{counts.round_trips / n:.1f} round trips a lead "
        f"({counts.pipelines / n:.1f} of them several statements together)"
    )
    for statement, seen in counts.statements.most_common(25):
        print(f"  {seen / n:5.2f}  {statement}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.per_lead")
    parser.add_argument("leads", nargs="?", type=int, default=300)
    leads_a_message = get_settings().leads_per_message
    parser.add_argument("--message", type=int, default=leads_a_message, help="leads a message, 1 to 100")
    args = parser.parse_args()
    if not 1 <= args.message <= MESSAGE_MOST:
        parser.error(f"--message takes 1 to {MESSAGE_MOST} leads, as LEADRELAY_LEADS_PER_MESSAGE does")
    main(args.leads, args.message)
