"""2. Pipeline: leads/s from receipt to opportunity (sandbox limits off) against Celery no-ops.

Throughput: a backlog of leads is recorded and enqueued, then one worker
(prefork, concurrency 2 — the no-op baseline's settings) delivers them; the rate
is counted between the first and the last delivery, as the no-op rate is between
its first and last task. Latency: signed webhooks at 50/s through the receiver
with the worker and beat running; receipt→opportunity from the ledger's
``received_at`` and ``delivered_at``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from bench import env, ledger, noop, signed
from bench.loadgen import run_wrk
from bench.procstat import CpuMeter, PeakRss
from bench.results import Row, Run, at_least, at_most
from leadrelay.routing import load_routing
from leadrelay.worker.queue import enqueue

SECTION = "2. Pipeline"
CONCURRENCY = 2
LATENCY_RATE = 50


@dataclass(frozen=True)
class Sizes:
    backlog: int = 1000
    noops: int = 5000
    latency_seconds: int = 20


def _wait_delivered(url: str, ids: list[int] | None, count: int, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(ledger.times(url, ids=ids)) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"only {len(ledger.times(url, ids=ids))} of {count} leads delivered: {ledger.states(url)}"
            )
        time.sleep(0.5)


def bench_pipeline(run: Run, work: Path, sizes: Sizes) -> dict[str, int]:
    """Rows for section 2; returns the worker's peak RSS (bytes) for section 5."""
    print(f"\n== {SECTION}", flush=True)
    env.flush_redis()
    noop_rate, noop_rss = noop.measure(sizes.noops, concurrency=CONCURRENCY, logdir=str(work))

    url, sandbox, routing_path, service = env.unlimited_delivery(work)
    try:
        ids = ledger.ingest(url, [signed.lead(n, tag="p") for n in range(sizes.backlog)])
        enqueue(ids)
        worker = env.worker(service, work, concurrency=CONCURRENCY)
        groups = {"worker": worker.popen.pid}
        with env.processes(worker), PeakRss(groups) as rss, CpuMeter(groups) as cpu:
            _wait_delivered(url, ids, len(ids), timeout=600)
        drained = ledger.drain_rate(ledger.times(url, ids=ids))

        receiver, base = env.receiver(service, work, workers=1)
        worker = env.worker(service, work, concurrency=CONCURRENCY)
        beat = env.beat(service, work)
        secret = signed.secret(load_routing(routing_path))
        count = LATENCY_RATE * sizes.latency_seconds * 2  # more than wrk sends: never a repeat
        requests = signed.write_requests(work / "requests-latency.tsv", secret, count, tag="l")
        with env.processes(receiver, worker, beat), PeakRss({"worker": worker.popen.pid}) as rss_live:
            time.sleep(3)  # the worker's pool is up
            sent = run_wrk(base, requests, connections=4, seconds=sizes.latency_seconds, rate=LATENCY_RATE)
            _wait_delivered(url, None, ledger.count(url), timeout=300)
        if sent.errors or sent.accepted != sent.requests:
            run.notes.append(f"pipeline latency: {sent.requests} sent, statuses {sent.statuses}")
        backlog_done = max(d for _, d in ledger.times(url, ids=ids))
        pairs = [p for p in ledger.times(url) if p[0] > backlog_done]
        lat = ledger.latencies_ms(pairs)
    finally:
        sandbox.stop()
        env.flush_redis()

    run.add(
        Row(
            SECTION,
            f"leads/s receipt→opportunity, backlog of {len(ids)}, 1 worker × {CONCURRENCY} processes",
            drained,
            "/s",
            baseline=f"Celery no-op tasks/s, same broker and settings, {CONCURRENCY} processes",
            baseline_value=noop_rate,
            target="≥ 40 % of no-op",
            met=at_least(drained, 0.4 * noop_rate),
            note=f"worker {cpu.cores('worker'):.2f} cores, Postgres {cpu.cores('postgres'):.2f}",
        )
    )
    run.add(
        Row(
            SECTION,
            f"p50 receipt→opportunity at {LATENCY_RATE} leads/s ({len(lat)} leads)",
            ledger.percentile(lat, 50),
            "ms",
            target="≤ 100 ms",
            met=at_most(ledger.percentile(lat, 50), 100),
        )
    )
    run.add(
        Row(SECTION, f"p99 receipt→opportunity at {LATENCY_RATE} leads/s", ledger.percentile(lat, 99), "ms")
    )
    return {
        "worker": max(rss.per_process.get("worker", 0), rss_live.per_process.get("worker", 0)),
        "worker_total": max(rss.total.get("worker", 0), rss_live.total.get("worker", 0)),
        "noop_worker": noop_rss,
    }
