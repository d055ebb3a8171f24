"""One scheduler at a time, elected in the ledger; whoever leads, each job runs once per schedule.

On the real Postgres and on the embedded SQLite ledger alike. The candidates here
are :class:`Scheduler` objects ticked by hand, so a "dead" leader is one that
simply stops ticking (the process tests kill real ones).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import update

from leadrelay.db import transaction
from leadrelay.models import SWEEP_JOB, SchedulerLease
from leadrelay.routing import Routing
from leadrelay.runtime import Runtime
from leadrelay.schema import upgrade
from leadrelay.worker.scheduling.jobs import DailyAt, Every, Job, claim_due
from leadrelay.worker.scheduling.lease import take_or_renew
from leadrelay.worker.scheduling.periodic import RETENTION_AT, RETENTION_JOB, leadrelay_jobs
from leadrelay.worker.scheduling.scheduler import Scheduler
from tests.conftest import make_settings

LEASE = 1.0


@pytest.fixture(params=["postgresql", "sqlite"])
def ledger(request: pytest.FixtureRequest, routing: Routing, tmp_path: Path) -> Iterator[Runtime]:
    if request.param == "postgresql":
        url = request.getfixturevalue("clean_db")
    else:
        url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
        upgrade(url)
    rt = Runtime.load(make_settings(database_url=url, scheduler_lease_seconds=LEASE), routing)
    yield rt
    rt.close()


def candidate(rt: Runtime, name: str, *jobs: Job) -> Scheduler:
    return Scheduler(runtime=lambda: rt, jobs=lambda _rt: jobs, name=name)


def job(name: str, schedule: Every | DailyAt, ran: list[str] | None = None) -> Job:
    return Job(name, schedule, lambda: ran.append(name) if ran is not None else None)


def lapse(rt: Runtime) -> None:
    """The leader's lease ran out (it stopped renewing a while ago)."""
    with transaction(rt.sessions) as session:
        session.execute(update(SchedulerLease).values(until=datetime(2000, 1, 1, tzinfo=UTC)))


def tick_until_leading(scheduler: Scheduler, *, timeout: float) -> float:
    started = time.monotonic()
    while not scheduler.leading:
        assert time.monotonic() - started < timeout, f"{scheduler.name} never took over"
        scheduler.tick()
        time.sleep(0.02)
    return time.monotonic() - started


def test_of_two_schedulers_one_leads_and_only_it_runs_the_jobs(ledger: Runtime) -> None:
    every_tick = job("every-tick", Every(0))
    first, second = candidate(ledger, "first", every_tick), candidate(ledger, "second", every_tick)
    for _ in range(5):
        assert first.tick() == ["every-tick"]
        assert second.tick() == []
    assert (first.leading, second.leading) == (True, False)


def test_candidates_racing_for_a_lapsed_lease_elect_exactly_one(ledger: Runtime) -> None:
    racers = 6

    def race(name: str, barrier: threading.Barrier) -> bool:
        barrier.wait()
        with transaction(ledger.sessions) as session:
            return take_or_renew(session, holder=name, seconds=30) is not None

    for round_ in range(3):
        barrier = threading.Barrier(racers)
        names = [f"r{round_}-{n}" for n in range(racers)]
        with ThreadPoolExecutor(racers) as pool:
            won = list(pool.map(race, names, [barrier] * racers))
        assert won.count(True) == 1, won
        lapse(ledger)


def test_when_the_leader_stops_another_takes_over_once_its_lease_runs_out(ledger: Runtime) -> None:
    ran: list[str] = []
    sweep = job("sweep-like", Every(0), ran)
    dead, heir = candidate(ledger, "dead", sweep), candidate(ledger, "heir", sweep)
    dead.tick()
    assert dead.leading and ran == ["sweep-like"]
    # the leader is killed: it never ticks again, nor resigns
    took = tick_until_leading(heir, timeout=LEASE + 2)
    assert LEASE * 0.5 <= took <= LEASE + 1
    assert heir.tick() == ["sweep-like"]  # the sweep goes on


def test_a_clean_stop_hands_over_at_once(ledger: Runtime) -> None:
    leaving, heir = candidate(ledger, "leaving"), candidate(ledger, "heir")
    leaving.tick()
    leaving.resign()
    heir.tick()
    assert heir.leading and not leaving.leading


def test_a_new_leader_neither_repeats_nor_skips_a_job(ledger: Runtime) -> None:
    ran: list[str] = []
    every_2s = job("every-2s", Every(2), ran)
    old, new = candidate(ledger, "old", every_2s), candidate(ledger, "new", every_2s)
    assert old.tick() == ["every-2s"]
    started = time.monotonic()
    old.resign()
    assert new.tick() == []  # it leads now, and the job ran under the old leader: not again
    assert new.leading
    while not new.tick():
        time.sleep(0.05)
    # due two seconds after the old leader's run, not two seconds after the new one came to lead
    assert 1.8 <= time.monotonic() - started < 2.8
    assert ran == ["every-2s", "every-2s"]


def test_a_deposed_leader_cannot_claim_a_job(ledger: Runtime) -> None:
    hourly = job("hourly", Every(3600))
    deposed, heir = candidate(ledger, "deposed", hourly), candidate(ledger, "heir", hourly)
    deposed.tick()  # leads, runs the job
    lapse(ledger)
    heir.tick()
    with transaction(ledger.sessions) as session:
        late = job("late", Every(0))
        assert claim_due(session, [late], holder="deposed", stale_after=timedelta(seconds=LEASE)) == []
        assert len(claim_due(session, [late], holder="heir", stale_after=timedelta(seconds=LEASE))) == 1


def test_a_run_whose_runner_died_runs_again_once_a_lease_has_passed(ledger: Runtime) -> None:
    ran: list[str] = []
    daily = job("daily-ish", Every(86400), ran)
    dying, heir = candidate(ledger, "dying"), candidate(ledger, "heir", daily)
    dying.tick()
    with transaction(ledger.sessions) as session:  # claimed, then the process died before running it
        assert claim_due(session, [daily], holder="dying", stale_after=timedelta(seconds=LEASE))
    tick_until_leading(heir, timeout=LEASE + 2)
    deadline = time.monotonic() + LEASE + 1
    while not ran and time.monotonic() < deadline:
        heir.tick()
        time.sleep(0.05)
    assert ran == ["daily-ish"]
    assert heir.tick() == []


def test_a_run_that_fails_is_tried_again_at_the_next_tick(ledger: Runtime) -> None:
    calls: list[int] = []

    def flaky() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("the broker refused")

    scheduler = candidate(ledger, "only", Job("flaky", Every(3600), flaky))
    assert scheduler.tick() == []
    assert scheduler.tick() == ["flaky"]
    assert scheduler.tick() == []
    assert len(calls) == 2


def test_the_daily_job_runs_once_a_day_at_its_hour() -> None:
    at = DailyAt(hour=3, minute=17)
    day = datetime(2026, 12, 1, tzinfo=UTC)
    seen = day.replace(hour=1)
    assert not at.due(last_run=None, since=seen, now=day.replace(hour=3, minute=16))
    assert at.due(last_run=None, since=seen, now=day.replace(hour=3, minute=17))
    ran = day.replace(hour=3, minute=17, second=2)
    assert not at.due(last_run=ran, since=seen, now=day.replace(hour=23, minute=59))
    assert at.due(last_run=ran, since=seen, now=ran + timedelta(days=1))
    # first seen after today's hour: the first run is tomorrow's, not at once
    assert not at.due(last_run=None, since=day.replace(hour=4), now=day.replace(hour=5))
    # 03:17 UTC, whatever time zone the clock was read in
    paris = timezone(timedelta(hours=1))
    assert not at.due(last_run=None, since=seen, now=datetime(2026, 12, 1, 4, 16, tzinfo=paris))
    assert at.due(last_run=None, since=seen, now=datetime(2026, 12, 1, 4, 17, tzinfo=paris))


def test_leadrelay_schedules_the_sweep_alerts_retention_and_each_inbox(ledger: Runtime) -> None:
    jobs = {job.name: job for job in leadrelay_jobs(ledger)}
    assert jobs[SWEEP_JOB].schedule == Every(ledger.settings.sweep_interval_seconds)
    assert jobs["alerts"].schedule == Every(ledger.settings.alert_interval_seconds)
    assert jobs[RETENTION_JOB].schedule == RETENTION_AT == DailyAt(hour=3, minute=17)
    assert {name for name in jobs if name.startswith("poll-inbox-")} == {
        f"poll-inbox-{name}" for name in ledger.routing.inboxes
    }
