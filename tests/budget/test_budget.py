"""The shared Nexudus budget, on the real Postgres: spacing, Retry-After, hourly caps."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import text

from leadrelay.db import make_engine, make_session_factory
from leadrelay.nexudus.budget import LedgerBudget, Spacing
from leadrelay.routing import NexudusLimits

FAST = {"clock_speed": 60.0}  # a "minute" lasts one second; the default 97 % safety margin


@pytest.fixture
def sessions(clean_db: str):  # type: ignore[no-untyped-def]
    engine = make_engine(clean_db)
    yield make_session_factory(engine)
    engine.dispose()


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


def test_writes_from_many_threads_never_exceed_the_per_minute_limit(sessions) -> None:
    limits = NexudusLimits(writes_per_minute=60, requests_per_minute=10_000, min_interval_ms=0, **FAST)
    budgets = [LedgerBudget(sessions, "acme", limits) for _ in range(4)]
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


def test_reads_and_writes_share_the_request_spacing(sessions) -> None:
    limits = NexudusLimits(min_interval_ms=100, requests_per_minute=120, writes_per_minute=60, **FAST)
    budget = LedgerBudget(sessions, "acme", limits)
    times = [
        *grant_times(budget, count=10, write=False),
        *grant_times(budget, count=5, write=True),
    ]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= Spacing.of(limits).request - 1e-6


def test_a_wait_longer_than_allowed_reserves_nothing(sessions) -> None:
    budget = LedgerBudget(sessions, "acme", NexudusLimits(writes_per_minute=60))  # one write a second
    assert budget.reserve(write=True, max_wait=0).at is not None
    first = budget.reserve(write=True, max_wait=0)
    second = budget.reserve(write=True, max_wait=0)
    assert first.at is None and second.at is None
    assert 0.5 < first.wait <= 1.1
    assert second.wait <= first.wait  # the refused call did not push the next slot out


def test_retry_after_blocks_every_worker_of_the_account_only(sessions) -> None:
    limits = NexudusLimits(**FAST)
    acme, other = LedgerBudget(sessions, "acme", limits), LedgerBudget(sessions, "other", limits)
    acme.penalise(0.8)
    assert LedgerBudget(sessions, "acme", limits).acquire(write=False, max_wait=0) == pytest.approx(
        0.8, abs=0.1
    )
    assert other.acquire(write=False, max_wait=0) == 0


def test_the_hourly_request_cap_holds_back_the_next_request(sessions) -> None:
    limits = NexudusLimits(
        requests_per_hour=10, min_interval_ms=0, requests_per_minute=100_000, clock_speed=3600.0, safety=1.0
    )  # an "hour" lasts one second
    budget = LedgerBudget(sessions, "acme", limits)
    assert [budget.acquire(write=False, max_wait=0) for _ in range(10)] == [0] * 10
    wait = budget.acquire(write=False, max_wait=0)
    assert 0.5 < wait <= 1.1
    time.sleep(wait)
    assert budget.acquire(write=False, max_wait=0.05) <= 0.05


def test_processes_on_their_own_connections_share_one_budget(clean_db: str) -> None:
    """Four separate interpreters (as on four hosts) pace each other through Postgres."""
    script = (
        "import sys, time, json\n"
        "from leadrelay.db import make_engine, make_session_factory\n"
        "from leadrelay.nexudus.budget import LedgerBudget\n"
        "from leadrelay.routing import NexudusLimits\n"
        "limits = NexudusLimits(writes_per_minute=60, requests_per_minute=10_000, min_interval_ms=0,"
        " clock_speed=60.0)\n"
        "budget = LedgerBudget(make_session_factory(make_engine(sys.argv[1])), 'acme', limits)\n"
        "out = []\n"
        "for _ in range(20):\n"
        "    slot = budget.reserve(write=True, max_wait=30)\n"
        "    out.append(slot.at)\n"
        "    time.sleep(slot.wait)\n"
        "print(json.dumps(out))\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, clean_db], stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    times = [t for proc in procs for t in json.loads(proc.communicate(timeout=60)[0])]
    assert len(times) == 80
    assert most_in_any_window(times, 1.0) <= 60


def test_usage_is_counted_per_minute(sessions) -> None:
    budget = LedgerBudget(
        sessions,
        "acme",
        NexudusLimits(min_interval_ms=0, requests_per_minute=10_000, writes_per_minute=10_000),
    )
    for write in (False, True, True):
        budget.acquire(write=write, max_wait=1)
    with sessions() as session:
        requests, writes = session.execute(
            text("SELECT sum(requests), sum(writes) FROM nexudus_usage WHERE account = 'acme'")
        ).one()
    assert (requests, writes) == (3, 2)
