"""3. Nexudus budget and 7. Fairness: the documented limits, on a sped-up clock.

The sandbox enforces Nexudus's documented limits on a clock ``speed`` times
faster than the real one (``leadrelay sandbox --speed``: a "minute" lasts
60/speed seconds), and leadrelay's routing states the documented defaults with
the same ``clock_speed``, so both sides count the same minutes. Rates are
reported per sandbox minute, i.e. as they would be at speed 1. Three worker
processes (concurrency 1 each) and beat work through a backlog of new leads of
account ``main`` for a fixed window shorter than the backlog, so the window
measures the steady state.

Fairness: account ``second`` first gets a few leads with nothing else going on
(its baseline latency), then, while the backlog runs, one new lead every few
seconds; their receipt→opportunity latency is reported.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from bench import env, ledger, signed
from bench.results import Row, Run, at_least, at_most
from leadrelay.worker.queue import enqueue

BUDGET = "3. Nexudus budget"
FAIRNESS = "7. Fairness"
WORKERS = 3
WRITES_PER_MINUTE = 60


@dataclass(frozen=True)
class Sizes:
    backlog: int = 300
    window_seconds: int = 90  # real seconds
    others: int = 10
    speed: float = 5.0


def _deliver_and_wait(url: str, bodies: list[dict], *, timeout: float) -> list[int]:
    ids = ledger.ingest(url, bodies)
    enqueue(ids)
    deadline = time.monotonic() + timeout
    while len(ledger.times(url, ids=ids)) < len(ids) and time.monotonic() < deadline:
        time.sleep(0.2)
    return ids


def bench_budget(run: Run, work: Path, sizes: Sizes) -> None:
    print(f"\n== {BUDGET} / {FAIRNESS}", flush=True)
    url = env.fresh_database(env.DB_NAME)
    env.flush_redis()
    sandbox = env.sandbox(work, limits=True, speed=sizes.speed)
    sandbox.add_tenant(*env.SECOND_TENANT)
    limits = {"clock_speed": sizes.speed}
    routing_path = env.routing_file(work / "routing.yaml", limits=limits, second_account=True)
    service = env.service_env(url, routing_path, work, NEXUDUS_BASE_URL=sandbox.base_url)
    env.use_env(service)
    workers = [env.worker(service, work, f"worker{n}", concurrency=1) for n in range(WORKERS)]
    try:
        with env.processes(*workers, env.beat(service, work)):
            time.sleep(5)  # pools up
            idle_ids = []
            for n in range(3):
                idle_ids += _deliver_and_wait(url, [signed.lead(n, listing="annex", tag="idle")], timeout=60)
            idle = ledger.latencies_ms(ledger.times(url, ids=idle_ids))

            backlog = ledger.ingest(url, [signed.lead(n, tag="backlog") for n in range(sizes.backlog)])
            enqueue(backlog)
            started = time.time()
            others: list[int] = []
            gap = sizes.window_seconds / (sizes.others + 2)
            for n in range(sizes.others):
                time.sleep(gap)
                others += ledger.ingest(url, [signed.lead(n, listing="annex", tag="busy")])
                enqueue(others[-1:])
            time.sleep(max(0.0, started + sizes.window_seconds - time.time()))
            ended = time.time()
        delivered = len(ledger.times(url, ids=backlog))
        busy = ledger.latencies_ms(ledger.times(url, ids=others))
        log = [r for r in sandbox.requests() if started <= r["at"] <= ended]
        throttled = sandbox.throttled() + sandbox.throttled(env.SECOND_TENANT[0])
    finally:
        sandbox.stop()
        env.flush_redis()

    main = [r for r in log if r["tenant"] == "sandbox@leadrelay.local"]
    writes = sorted(r["at"] for r in main if r["method"] != "GET" and r["status"] == 200)
    span = writes[-1] - writes[0] if len(writes) > 1 else 0.0
    per_minute = (len(writes) - 1) / span * 60 / sizes.speed if span else 0.0
    run.add(
        Row(
            BUDGET,
            f"writes/min used, backlog of {sizes.backlog}, {WORKERS} workers, sandbox clock ×{sizes.speed:g}",
            per_minute,
            "/min",
            baseline="Nexudus ceiling",
            baseline_value=WRITES_PER_MINUTE,
            target="≥ 95 % of 60",
            met=at_least(per_minute, 0.95 * WRITES_PER_MINUTE),
            note=(
                f"{delivered} leads delivered in a {sizes.window_seconds} s window"
                f" (= {sizes.window_seconds * sizes.speed / 60:.1f} sandbox minutes); per sandbox minute;"
                f" on the wall clock {per_minute * sizes.speed:.0f} writes per real minute, of the"
                f" {WRITES_PER_MINUTE * sizes.speed:.0f} the sped-up sandbox allows (see the real-clock row)"
            ),
        )
    )
    run.add(Row(BUDGET, "409/429 answers received", throttled, "", target="0", met=throttled == 0))
    run.add(Row(BUDGET, "Nexudus requests per delivered lead", len(main) / max(1, delivered), ""))
    complete = len(busy) == sizes.others
    run.add(
        Row(
            FAIRNESS,
            f"p50 latency of another account's new leads during the backlog"
            f" ({len(busy)}/{sizes.others} delivered)",
            ledger.percentile(busy, 50),
            "ms",
            baseline="the same account with no backlog",
            baseline_value=ledger.percentile(idle, 50),
            target="within seconds",
            met=complete and at_most(max(busy), 10_000),
            note=f"max {max(busy, default=float('nan')):,.0f} ms",
        )
    )
