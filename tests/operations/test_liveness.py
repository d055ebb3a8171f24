"""No single process keeps leads moving: a receiver and two workers, no `leadrelay beat`.

Real processes on the machine's Postgres and Redis, a Nexudus sandbox in its own
process that fails and throttles answers, an account budget tight enough to hand
leads back to the ledger, and the worker that leads the scheduler SIGKILLed
mid-run. What the budget and the failures put off, and what the killed worker
held, is picked up by the scheduler the survivor takes over: every lead settles,
with one opportunity each.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from leadrelay.children import Child, wait_http
from leadrelay.models import SWEEP_JOB, ScheduledJob, SchedulerLease
from leadrelay.testing.processes import RemoteSandbox, sandbox_env, service_env
from tests.conftest import UNTHROTTLED, free_port, routing_file
from tests.helpers import canonical, unsettled, wait_for
from tests.intake.test_webhooks import signed

LEADS = 150
SECRET = "whsec_" + "bGl2ZW5lc3MtbGl2ZW5lc3MtbGl2ZW5lc3M="
SCHEDULER_LEASE = 2.0
# 40 requests a second for the account, and hardly any waiting for it: the budget hands leads back
BUDGET = {**UNTHROTTLED, "requests_per_minute": 2400, "concurrent_deliveries": 4}
FAULTS = [
    {
        "action": "status",
        "method": "POST",
        "path_regex": "crmopportunities$",
        "status": 500,
        "probability": 0.1,
    },
    {
        "action": "status_after_commit",
        "method": "POST",
        "path_regex": "crmopportunities$",
        "probability": 0.03,
    },
    {
        "action": "throttle",
        "method": "POST",
        "path_regex": "crmopportunities$",
        "seconds": 1,
        "probability": 0.05,
    },
    {"action": "status", "method": "POST", "path_regex": "coworkers$", "status": 503, "probability": 0.05},
    {"action": "drop", "method": "GET", "path_regex": "coworkers$", "probability": 0.03},
]


@dataclass
class Stack:
    receiver: str
    workers: list[Child]
    metrics: list[str]


@pytest.fixture
def stack(clean_db: str, redis_broker: str, tmp_path: Path) -> Iterator[tuple[Stack, RemoteSandbox]]:
    sandbox = RemoteSandbox(tmp_path, limits=False)
    for rule in FAULTS:
        sandbox.add_fault(times=None, **rule)
    env = sandbox_env(
        tmp_path,
        sandbox.base_url,
        routing_file(tmp_path, limits=BUDGET, secret=SECRET),
        LEADRELAY_NEXUDUS_TIMEOUT="1",
        LEADRELAY_BUDGET_WAIT_SECONDS="0.05",
        LEADRELAY_LEASE_SECONDS="6",
        LEADRELAY_SCHEDULER_LEASE_SECONDS=str(SCHEDULER_LEASE),
        LEADRELAY_RETRY_SCHEDULE="0,1,1,2,2,3,3,3,3,3,3,3",
        LEADRELAY_RETRY_JITTER="0.2",
    )
    port, metrics = free_port(), [free_port(), free_port()]
    receiver = Child("receiver", ["serve", "--port", str(port)], env=env, logdir=tmp_path)
    workers = [
        Child(
            f"worker{n}",
            ["worker", "--concurrency", "2", "--pool", "prefork", "--metrics-port", str(metrics[n])],
            env=env,
            logdir=tmp_path,
        )
        for n in range(2)
    ]
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", receiver)
        for worker, metrics_port in zip(workers, metrics, strict=True):
            wait_http(f"http://127.0.0.1:{metrics_port}/metrics", worker)
        yield Stack(f"http://127.0.0.1:{port}", workers, [f"http://127.0.0.1:{m}" for m in metrics]), sandbox
    finally:
        for proc in (receiver, *workers):
            proc.stop()
        sandbox.stop()


def send(base: str, n: int) -> None:
    body = json.dumps(
        canonical(
            external_id=f"live-{n:04}", contact={"full_name": f"Client {n}", "email": f"c{n}@live.example"}
        )
    ).encode()
    answer = httpx.post(f"{base}/webhooks/canonical", content=body, headers=signed(SECRET, body), timeout=10)
    assert answer.status_code == 202, answer.text


def leader_pid(url: str) -> int | None:
    """The main process of the scheduler holding an unexpired lease (holders are host:pid:id)."""
    engine = create_engine(url)
    try:
        with Session(engine) as session:
            holder = session.execute(
                select(SchedulerLease.holder).where(SchedulerLease.until > func.clock_timestamp())
            ).scalar_one_or_none()
    finally:
        engine.dispose()
    return int(holder.split(":")[1]) if holder else None


def budget_handbacks(metrics_url: str) -> float:
    families = text_string_to_metric_families(httpx.get(f"{metrics_url}/metrics").text)
    return sum(
        sample.value
        for family in families
        for sample in family.samples
        if sample.name == "leadrelay_nexudus_throttled_total" and sample.labels.get("by") == "budget"
    )


def test_without_beat_every_lead_settles_when_the_leading_worker_is_killed(stack, clean_db: str) -> None:
    stack_, sandbox = stack
    wait_for(lambda: leader_pid(clean_db) is not None, timeout=20, what="a worker to lead the scheduler")
    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda n: send(stack_.receiver, n), range(LEADS)))

    wait_for(lambda: len(sandbox.opportunities()) >= LEADS // 4, timeout=60, what="deliveries under way")
    [leader] = [w for w in stack_.workers if w.popen.pid == leader_pid(clean_db)]
    [survivor] = [w for w in stack_.workers if w is not leader]
    leader.kill()  # SIGKILL to the main process and its pool: its leads stay leased, its lease lapses
    killed = time.monotonic()
    wait_for(lambda: leader_pid(clean_db) == survivor.popen.pid, timeout=10, what="the survivor to lead")
    takeover = time.monotonic() - killed
    assert takeover <= SCHEDULER_LEASE + 2

    try:
        wait_for(lambda: unsettled(clean_db) == 0, timeout=60, interval=0.5)
    except AssertionError:
        raise AssertionError(f"{unsettled(clean_db)} of {LEADS} leads never settled") from None
    settled = time.monotonic() - started
    names = Counter(o["Name"] for o in sandbox.opportunities())
    assert [name for name, n in names.items() if n > 1] == []
    assert set(names) == {f"Broker live-{n:04}" for n in range(LEADS)}
    handbacks = budget_handbacks(stack_.metrics[stack_.workers.index(survivor)])
    assert handbacks > 0  # the budget did hand leads back (in the survivor alone)
    print(
        f"\n{LEADS} leads settled {settled:.1f}s after the first was sent; takeover {takeover:.1f}s; "
        f"{len(names)} opportunities; {handbacks:.0f} budget handbacks in the survivor"
    )


def test_leadrelay_beat_leads_when_alone_and_hands_over_when_stopped(
    clean_db: str, redis_broker: str, tmp_path: Path
) -> None:
    env = service_env(LEADRELAY_DATA_DIR=str(tmp_path), LEADRELAY_SCHEDULER_LEASE_SECONDS="30")
    beat = Child("beat", ["beat"], env=env, logdir=tmp_path)
    try:
        wait_for(lambda: leader_pid(clean_db) == beat.popen.pid, timeout=20, what="beat to lead")
        wait_for(lambda: last_sweep(clean_db) is not None, timeout=10, what="beat to sweep")
    finally:
        beat.stop()
    assert beat.popen.returncode == 0
    assert leader_pid(clean_db) is None  # resigned: a worker takes over at once, not 30 s later


def last_sweep(url: str) -> datetime | None:
    engine = create_engine(url)
    try:
        with Session(engine) as session:
            return session.execute(
                select(ScheduledJob.last_done_at).where(ScheduledJob.name == SWEEP_JOB)
            ).scalar_one_or_none()
    finally:
        engine.dispose()
