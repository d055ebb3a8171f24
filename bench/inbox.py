"""6. Inbox: messages per second imported from a real Dovecot mailbox of 1,000 messages.

Dovecot runs from the inbox tests' throwaway config (leadrelay/testing/dovecot.py) on
loopback; the mailbox holds distinct portal notifications made from the fixtures
(leadrelay/testing/mails.py). Baseline: the inbox floor (``floor_inbox.py``), the
same server, mailbox and batch size: fetch, store each message raw in the ledger,
flag it — no parsing; its flags are then taken off again. (Fetching alone with
``BODY.PEEK[]`` is kept in the notes.) Then one ``poll_inbox`` pass imports them:
fetch, read the intake keys from the headers, commit raw to the ledger, flag
``\\Seen``; enqueueing is counted but not sent (the broker is measured in section
2). The parsing did not vanish, it moved to the worker: its first stage (sort the
mail, read it once, dedupe it) is then run on every stored mail in this process
and its CPU per mail reported beside the pass's.
"""

from __future__ import annotations

import imaplib
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import psycopg
import yaml

from bench import env, floor_inbox
from bench.procstat import backends_cpu, backends_used, server_cpu
from bench.results import Row, Run, at_least
from leadrelay.runtime import Runtime
from leadrelay.testing.dovecot import MX, USERS, Dovecot, received
from leadrelay.testing.mails import enquiries
from leadrelay.worker.imap.poll import PollReport, RetryPolicy, poll_inbox
from leadrelay.worker.imap.wire import parse_fetch, uid_set
from leadrelay.worker.pipeline import read

SECTION = "6. Inbox"
FOLDER = "INBOX"
BATCH = 50


@dataclass(frozen=True)
class Sizes:
    messages: int = 1000
    rounds: int = 5  # floor and leadrelay passes, interleaved; medians reported


def _routing(path: Path, dovecot: Dovecot) -> Path:
    data = yaml.safe_load(resources.files("leadrelay").joinpath("default_routing.yaml").read_text())
    data["inboxes"] = {
        "leads": {
            "host": "127.0.0.1",
            "port": dovecot.imap_port,
            "tls": False,
            "username": "leads",
            "password": USERS["leads"],
            "folder": FOLDER,
            "batch_size": BATCH,
            "timeout_seconds": 30,
            "trusted_authserv_ids": [MX],  # the mails carry this server's verdict (a portal's genuine mail)
        }
    }
    path.write_text(yaml.safe_dump(data))
    return path


def _fetch_all(dovecot: Dovecot) -> tuple[int, float]:
    """Every message in batches of BATCH, peeked (nothing marked); (count, seconds)."""
    imap = imaplib.IMAP4("127.0.0.1", dovecot.imap_port, timeout=30)
    imap.login("leads", USERS["leads"])
    started = time.perf_counter()
    imap.select(FOLDER, readonly=True)
    _, data = imap.uid("SEARCH", "ALL")
    uids = [int(u) for u in data[0].split()]
    fetched = 0
    for start in range(0, len(uids), BATCH):
        _, data = imap.uid("FETCH", uid_set(uids[start : start + BATCH]), "(UID BODY.PEEK[])")
        fetched += len(parse_fetch(data))
    seconds = time.perf_counter() - started
    imap.logout()
    return fetched, seconds


class Clocks:
    """Wall time, this process's CPU, Dovecot's and the bench database's backends' CPU, over a block."""

    def __init__(self, dovecot: Dovecot) -> None:
        self._master = int((dovecot.root / "run" / "master.pid").read_text())

    def _now(self) -> tuple[float, float, float]:
        return (time.perf_counter(), time.process_time(), server_cpu(self._master))

    def __enter__(self) -> Clocks:
        self._start, self._backends = self._now(), backends_cpu(env.DB_NAME)
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._start[0]
        time.sleep(0.2)  # Dovecot reaps the connection's process
        end = self._now()
        self.cpu, self.dovecot = end[1] - self._start[1], end[2] - self._start[2]
        self.postgres = backends_used(self._backends, backends_cpu(env.DB_NAME))  # connections still open


@dataclass
class Pass:
    """One import of the whole mailbox: how many messages, over which clocks."""

    count: int
    clocks: Clocks

    def rate(self) -> float:
        return self.count / self.clocks.wall if self.clocks.wall else 0.0

    def per(self, seconds: float) -> float:
        return 1000 * seconds / max(1, self.count)


def _median(passes: list[Pass], value: Callable[[Pass], float]) -> float:
    return statistics.median(value(p) for p in passes)


def _ms(passes: list[Pass], clock: str) -> float:
    """The median over ``passes`` of one clock's milliseconds a message (cpu, dovecot, postgres)."""
    return _median(passes, lambda p: p.per(getattr(p.clocks, clock)))


def bench_inbox(run: Run, work: Path, sizes: Sizes) -> None:
    print(f"\n== {SECTION}", flush=True)
    dovecot = Dovecot.start(introspection_url="http://127.0.0.1:9/unused")
    floors: list[Pass] = []
    ours: list[Pass] = []
    try:
        mails = [received(e.raw) for e in enquiries(sizes.messages)]
        dovecot.deliver(FOLDER, *mails)
        fetched, fetch_seconds = _fetch_all(dovecot)
        login = ("127.0.0.1", dovecot.imap_port, "leads", USERS["leads"], FOLDER)

        def floor_pass() -> None:
            url = env.fresh_database(env.DB_NAME)
            with psycopg.connect(env.libpq_url(url)) as db, Clocks(dovecot) as clocks:
                stored = floor_inbox.import_all(*login, db, BATCH)
            floor_inbox.unflag(*login)
            floors.append(Pass(stored, clocks))

        def our_pass() -> PollReport:
            url = env.fresh_database(env.DB_NAME)
            env.use_env(env.service_env(url, _routing(work / "routing.yaml", dovecot), work))
            runtime = Runtime.load()
            with Clocks(dovecot) as clocks:
                report = poll_inbox(
                    runtime, "leads", enqueue=len, retry=RetryPolicy(attempts=2, first_delay=0.1)
                )
            runtime.engine.dispose()
            floor_inbox.unflag(*login)
            ours.append(Pass(report.marked, clocks))
            return report

        for n in range(sizes.rounds):  # interleaved, each side first in turn: one pass is under a second
            if n % 2:
                report = our_pass()
                floor_pass()
            else:
                floor_pass()
                report = our_pass()
        runtime = Runtime.load()  # the last pass's ledger: the worker's first stage reads what it stored
        started = time.process_time()
        states = Counter(read(runtime, lead_id, owner="bench").state.value for lead_id in report.lead_ids)
        worker_cpu = time.process_time() - started
        runtime.engine.dispose()
    finally:
        dovecot.stop()
    env.drop_database(env.DB_NAME)
    stage = (
        f"{1000 * worker_cpu / max(1, len(report.lead_ids)):.1f} ms CPU per mail —"
        f" {', '.join(f'{n} {s}' for s, n in sorted(states.items()))}"
    )
    _report(run, sizes, (floors, ours), report, fetch=fetched / fetch_seconds, stage=stage)


def _report(
    run: Run,
    sizes: Sizes,
    passes: tuple[list[Pass], list[Pass]],
    report: PollReport,
    *,
    fetch: float,
    stage: str,
) -> None:
    floors, ours = passes
    rate, floor_rate = _median(ours, Pass.rate), _median(floors, Pass.rate)
    ratios = sorted(o.rate() / f.rate() for f, o in zip(floors, ours, strict=True) if f.rate())
    if report.marked != sizes.messages or report.error:
        run.notes.append(f"inbox: {report.summary()}")
    run.add(
        Row(
            SECTION,
            f"messages/s imported from Dovecot, {report.marked:,} of {sizes.messages:,}, batches of {BATCH},"
            f" median of {sizes.rounds} passes",
            rate,
            "/s",
            baseline=f"the inbox floor: fetch, store raw, flag; no parsing (median of {len(floors)})",
            baseline_value=floor_rate,
            target="≥ 0.5 of the floor",
            met=at_least(rate, 0.5 * floor_rate),
            note=(
                f"{_median(ours, lambda p: p.clocks.wall):.2f} s a pass (floor"
                f" {_median(floors, lambda p: p.clocks.wall):.2f} s); each pair's ratio"
                f" {ratios[0]:.2f}–{ratios[-1]:.2f}; the last pass: {report.new} stored for the workers,"
                f" {report.failed} too big, {report.marked} flagged \\Seen; the floor stored"
                f" {floors[-1].count}; fetch alone (BODY.PEEK[], nothing done): {fetch:,.0f}/s"
            ),
        )
    )
    run.add(
        Row(
            SECTION,
            "importer CPU per message (process CPU, median)",
            _ms(ours, "cpu"),
            "ms",
            baseline="the floor's CPU per message",
            baseline_value=_ms(floors, "cpu"),
            note=(
                f"Dovecot CPU per message {_ms(ours, 'dovecot'):.2f} ms"
                f" under leadrelay, {_ms(floors, 'dovecot'):.2f} ms under the floor;"
                f" bench database's Postgres backends {_ms(ours, 'postgres'):.2f} ms"
                f" vs {_ms(floors, 'postgres'):.2f} ms. The worker's first stage"
                f" then (sort, read once, dedupe; in process): {stage}"
            ),
        )
    )
