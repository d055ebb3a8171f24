"""The shared Nexudus budget, one contract: spacing, Retry-After, caps, sends.

Every case runs on each implementation and database the ledger uses: the one
statement per decision on Postgres, and the locked Python decision on SQLite (the
embedded ledger) and on Postgres (the same decision, as a reference).
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from leadrelay.db import make_engine, make_session_factory
from leadrelay.nexudus.budget import LedgerBudget, LockingBudget, Spacing, StatementBudget, ledger_budget
from leadrelay.routing import NexudusLimits
from tests.conftest import fresh_ledger

FAST = {"clock_speed": 60.0}  # a "minute" lasts one second; the default 97 % safety margin


IMPLEMENTATIONS = {"statement": StatementBudget, "locking": LockingBudget}
Make = Callable[[str, NexudusLimits], LedgerBudget]


@pytest.fixture(params=["locking-sqlite", "locking-postgres", "statement-postgres"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(implementation, ledger URL): a fresh, migrated ledger."""
    kind, database = request.param.split("-")
    return kind, fresh_ledger(request, tmp_path, database)


@pytest.fixture
def sessions(ledger: tuple[str, str]) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(ledger[1])
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def budget(ledger: tuple[str, str], sessions: sessionmaker[Session]) -> Make:
    """Budgets of the implementation under test, on its ledger."""
    cls = IMPLEMENTATIONS[ledger[0]]
    return lambda account, limits: cls(sessions, account, limits)


def test_the_ledger_picks_one_statement_on_postgres_and_the_lock_elsewhere(ledger, sessions) -> None:
    picked = type(ledger_budget(sessions, "acme", NexudusLimits()))
    assert picked is (StatementBudget if ledger[1].startswith("postgresql") else LockingBudget)


def grant_times(budget: LedgerBudget, *, count: int, write: bool) -> list[float]:
    """Reserve ``count`` slots, waiting as told; each slot's time on the database clock."""
    granted = []
    for _ in range(count):
        slot = budget.reserve(write=write, max_wait=30)
        assert slot.at is not None
        granted.append(slot.at)
        time.sleep(slot.wait)
    return granted


def most_in_any_window(times: list[float], window: float) -> int:
    ordered = sorted(times)
    best, start = 0, 0
    for end, at in enumerate(ordered):
        while at - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_writes_from_many_threads_never_exceed_the_per_minute_limit(budget: Make) -> None:
    limits = NexudusLimits(writes_per_minute=60, requests_per_minute=10_000, min_interval_ms=0, **FAST)
    budgets = [budget("acme", limits) for _ in range(4)]
    times: list[float] = []
    lock = threading.Lock()

    def run(budget: LedgerBudget) -> None:
        got = grant_times(budget, count=30, write=True)
        with lock:
            times.extend(got)

    threads = [threading.Thread(target=run, args=(b,)) for b in budgets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(times) == 120
    assert most_in_any_window(times, 1.0) <= 60  # 60 writes per (sped-up) minute
    gaps = [b - a for a, b in itertools.pairwise(sorted(times))]
    assert min(gaps) >= Spacing.of(limits).write - 1e-6


def test_requests_never_exceed_the_per_minute_limit_in_any_window(budget: Make) -> None:
    """Two requests may come back to back (a burst of two); still no minute holds more than the limit."""
    limits = NexudusLimits(min_interval_ms=0, requests_per_minute=120, writes_per_minute=100_000, **FAST)
    acme = budget("acme", limits)
    times = []
    for n in range(60):
        times += grant_times(acme, count=3, write=n % 2 == 0)  # reads and writes share the limit
    assert len(times) == 180
    assert most_in_any_window(times, Spacing.of(limits).minute) <= 120


def test_a_second_request_may_follow_at_once_and_a_third_waits_the_spacing(budget: Make) -> None:
    limits = NexudusLimits(min_interval_ms=0, requests_per_minute=120)  # a real minute: 0.52 s apart
    acme = budget("acme", limits)
    waits = [acme.reserve(write=False, max_wait=30).wait for _ in range(3)]
    assert waits[0] <= 0.01 and waits[1] <= 0.05  # the burst of two
    assert waits[2] >= Spacing.of(limits).request - 0.1  # then the spacing


def test_two_reads_fit_between_two_writes_reserved_ahead(budget: Make) -> None:
    """Two leads in step: both next leads' lookups come between the same two writes, which keep
    their spacing (strict spacing pushed the next write out by half a spacing)."""
    # a real minute (writes a second apart): the reservations themselves take no share of a gap
    limits = NexudusLimits(min_interval_ms=0, requests_per_minute=120, writes_per_minute=60)
    acme = budget("acme", limits)
    first = acme.reserve(write=True, max_wait=30)
    second = acme.reserve(write=True, max_wait=30)  # a write gap ahead
    lookups = [acme.reserve(write=False, max_wait=30) for _ in range(2)]
    third = acme.reserve(write=True, max_wait=30)
    assert None not in (first.at, second.at, third.at, *(r.at for r in lookups))
    write_gap = Spacing.of(limits).write
    assert second.at - first.at >= write_gap - 1e-6
    assert all(first.at < r.at < third.at for r in lookups)
    assert third.at - second.at <= write_gap * 1.05


def test_a_wait_longer_than_allowed_reserves_nothing(budget: Make) -> None:
    acme = budget("acme", NexudusLimits(writes_per_minute=60))  # one write a second
    assert acme.reserve(write=True, max_wait=0).at is not None
    first = acme.reserve(write=True, max_wait=0)
    second = acme.reserve(write=True, max_wait=0)
    assert first.at is None and second.at is None
    assert 0.5 < first.wait <= 1.1
    assert second.wait <= first.wait  # the refused call did not push the next slot out


def test_retry_after_blocks_every_worker_of_the_account_only(budget: Make) -> None:
    limits = NexudusLimits(**FAST)
    acme, other = budget("acme", limits), budget("other", limits)
    acme.penalise(0.8)  # the account's first use
    assert budget("acme", limits).acquire(write=False, max_wait=0) == pytest.approx(0.8, abs=0.1)
    assert other.acquire(write=False, max_wait=0) == 0


def test_the_hourly_request_cap_holds_back_the_next_request(budget: Make) -> None:
    limits = NexudusLimits(
        requests_per_hour=10, min_interval_ms=0, requests_per_minute=100_000, clock_speed=3600.0, safety=1.0
    )  # an "hour" lasts one second
    acme = budget("acme", limits)
    assert [acme.acquire(write=False, max_wait=0) for _ in range(10)] == [0] * 10
    wait = acme.acquire(write=False, max_wait=0)
    assert 0.5 < wait <= 1.1
    time.sleep(wait)
    assert acme.acquire(write=False, max_wait=0.05) <= 0.05


def test_workers_racing_at_the_hourly_cap_never_spend_the_same_slot(budget: Make, sessions) -> None:
    """Near a cap every decision must see every reservation before it (Postgres: under the lock)."""
    limits = NexudusLimits(requests_per_hour=20, min_interval_ms=0, requests_per_minute=100_000, safety=1.0)
    granted: list[float] = []
    lock = threading.Lock()

    def run(worker: LedgerBudget) -> None:
        for _ in range(12):
            slot = worker.reserve(write=False, max_wait=0)
            if slot.at is not None:
                with lock:
                    granted.append(slot.at)

    threads = [threading.Thread(target=run, args=(budget("acme", limits),)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(granted) == 20
    with sessions() as session:
        assert session.execute(text("SELECT sum(requests) FROM nexudus_usage")).scalar_one() == 20


@pytest.mark.parametrize(
    ("speed", "interval_ms", "send"),
    [
        (1.0, 100, 0.2),  # the documented interval, doubled
        (5.0, 100, 0.07),  # a sandbox ×5: 20 ms, plus 50 ms of real time (not 40 ms)
        (10.0, 100, 0.06),
        (1.0, 0, 0.0),  # no interval, no pacing
    ],
)
def test_the_send_gap_leaves_real_time_for_a_slip_on_a_sped_up_clock(
    speed: float, interval_ms: int, send: float
) -> None:
    limits = NexudusLimits(min_interval_ms=interval_ms, clock_speed=speed)
    assert Spacing.of(limits).send == pytest.approx(send)


def test_sends_are_held_the_hard_minimum_gap_apart(budget: Make) -> None:
    limits = NexudusLimits(min_interval_ms=100)  # sends at least 200 ms apart (the margin)
    first, second = budget("acme", limits), budget("acme", limits)
    assert first.pace_send() == 0.0  # the account's first use
    assert second.pace_send() == pytest.approx(Spacing.of(limits).send, abs=0.05)
    assert budget("other", limits).pace_send() == 0.0


def test_processes_on_their_own_connections_share_one_budget(ledger: tuple[str, str]) -> None:
    """Four separate interpreters (as on four hosts) pace each other through Postgres."""
    script = (
        "import sys, time, json\n"
        "from leadrelay.db import make_engine, make_session_factory\n"
        "from leadrelay.nexudus import budget\n"
        "from leadrelay.routing import NexudusLimits\n"
        "limits = NexudusLimits(writes_per_minute=60, requests_per_minute=10_000, min_interval_ms=0,"
        " clock_speed=60.0)\n"
        "cls = getattr(budget, sys.argv[2])\n"
        "budget = cls(make_session_factory(make_engine(sys.argv[1])), 'acme', limits)\n"
        "out = []\n"
        "for _ in range(20):\n"
        "    slot = budget.reserve(write=True, max_wait=30)\n"
        "    out.append(slot.at)\n"
        "    time.sleep(slot.wait)\n"
        "print(json.dumps(out))\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, ledger[1], IMPLEMENTATIONS[ledger[0]].__name__],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    times = [t for proc in procs for t in json.loads(proc.communicate(timeout=60)[0])]
    assert len(times) == 80
    assert most_in_any_window(times, 1.0) <= 60


def test_usage_is_counted_per_minute(budget: Make, sessions) -> None:
    acme = budget(
        "acme", NexudusLimits(min_interval_ms=0, requests_per_minute=10_000, writes_per_minute=10_000)
    )
    for write in (False, True, True):
        acme.acquire(write=write, max_wait=1)
    with sessions() as session:
        requests, writes = session.execute(
            text("SELECT sum(requests), sum(writes) FROM nexudus_usage WHERE account = 'acme'")
        ).one()
    assert (requests, writes) == (3, 2)
