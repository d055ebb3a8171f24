"""2. Pipeline: leads/s from receipt to opportunity (sandbox limits off) against the delivery floor.

Throughput: a backlog of leads is recorded and enqueued, then one worker
(prefork, concurrency 2 — the no-op baseline's settings) delivers them; the rate
is counted between the first and the last delivery, as the no-op rate is between
its first and last task. Latency: signed webhooks at 50/s through the receiver
with the worker and beat running; receipt→opportunity from the ledger's
``received_at`` and ``delivered_at`` of the leads received in that phase alone.

Floor (``floor_delivery.py``): as many plain loops as the worker has processes, the
same three Nexudus calls against the same sandbox and three ledger commits per lead,
on a backlog of the same size in the same ledger, right after leadrelay's drain.
CPU per lead is reported for leadrelay's worker, the floor, the sandbox under each,
and the bench database's Postgres backends, each counted from the first delivery on
(over the leads delivered after it, as the rate is): start-up is not a lead's cost.
Celery's no-op rate is kept in the notes, with what the backends wait on during each
drain (``waits.py``: row locks, WAL flushes).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench import env, floors, ledger, noop, signed
from bench.loadgen import run_wrk
from bench.procstat import CpuMeter, PeakRss
from bench.results import Row, Run, at_least, at_most
from bench.waits import Waits
from leadrelay.routing import load_routing
from leadrelay.testing.ledger import record_canonical
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


def _first_delivery(url: str, ids: list[int]) -> None:
    """Until the first of ``ids`` is delivered: start-up is over.

    CPU is counted from then on, over the leads delivered after it (:func:`_left`), as the
    rate is (first delivery to last): a worker's start-up (imports, its pool's fork: about
    1.2 s of CPU) happens once in its life, not once a backlog.
    """
    deadline = time.monotonic() + 120
    while not ledger.times(url, ids=ids):
        if time.monotonic() > deadline:
            raise RuntimeError(f"no lead delivered in 120 s: {ledger.states(url)}")
        time.sleep(0.05)


def _left(url: str, ids: list[int]) -> int:
    """The leads of ``ids`` not delivered yet; read once the meter runs, so none it counts is missed."""
    return len(ids) - len(ledger.times(url, ids=ids))


@dataclass(frozen=True)
class Drain:
    rate: float  # leads/s, first delivery to last
    metered: int  # the leads delivered after the first: what the CPU is counted over
    cpu: CpuMeter
    waits: Waits
    rss: PeakRss


def drain(url: str, service: dict[str, str], work: Path, sandbox: env.RemoteSandbox, ids: list[int]) -> Drain:
    """One worker (prefork × CONCURRENCY) delivers the recorded ``ids``; CPU from the first delivery on."""
    enqueue(ids)
    worker = env.worker(service, work, concurrency=CONCURRENCY)
    groups = {"worker": worker.popen.pid, "sandbox": sandbox.proc.popen.pid}
    with env.processes(worker), PeakRss(groups) as rss:
        _first_delivery(url, ids)
        with CpuMeter(groups) as cpu, Waits() as waits:
            metered = _left(url, ids)
            _wait_delivered(url, ids, len(ids), timeout=600)
    return Drain(ledger.drain_rate(ledger.times(url, ids=ids)), metered, cpu, waits, rss)


def bench_pipeline(run: Run, work: Path, sizes: Sizes) -> dict[str, int]:
    """Rows for section 2; returns the worker's peak RSS (bytes) for section 5."""
    print(f"\n== {SECTION}", flush=True)
    env.flush_redis()
    noop_rate, noop_rss = noop.measure(sizes.noops, concurrency=CONCURRENCY, logdir=str(work))

    url, sandbox, routing_path, service = env.unlimited_delivery(work)
    try:
        ids = ledger.ingest(url, [signed.lead(n, tag="p") for n in range(sizes.backlog)])
        ours = drain(url, service, work, sandbox, ids)
        drained, metered, cpu, waits, rss = ours.rate, ours.metered, ours.cpu, ours.waits, ours.rss

        floor_ids = record_canonical(
            url, [signed.lead(n, tag="f") for n in range(sizes.backlog)], prefix=floors.PREFIX
        )
        loops = floors.delivery(service, work, url=url, base_url=sandbox.base_url, processes=CONCURRENCY)
        floor_groups = {f"floor{n}": loop.popen.pid for n, loop in enumerate(loops)}
        with env.processes(*loops):
            _first_delivery(url, floor_ids)
            floor_meter = CpuMeter({**floor_groups, "sandbox": sandbox.proc.popen.pid})
            with floor_meter as floor_cpu, Waits() as floor_waits:
                floor_metered = _left(url, floor_ids)
                _wait_delivered(url, floor_ids, len(floor_ids), timeout=600)
        floor_rate = ledger.drain_rate(ledger.times(url, ids=floor_ids))

        # only the leads the receiver takes from here on: the backlog's and the floor's were
        # recorded before (the floor's, counted in until 2026-12-02, drained as a backlog)
        latency_start = datetime.now(UTC)
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
        pairs = [p for p in ledger.times(url) if p[0] >= latency_start]
        if len(pairs) != sent.accepted:
            run.notes.append(f"pipeline latency: {sent.accepted} answered 202, {len(pairs)} delivered")
        lat = ledger.latencies_ms(pairs)
    finally:
        sandbox.stop()
        env.flush_redis()

    def per_lead(meter: CpuMeter, leads: int, *labels: str) -> float:
        return 1000 * sum(meter.used[label] for label in labels) / leads

    worker_ms, floor_ms = per_lead(cpu, metered, "worker"), per_lead(floor_cpu, floor_metered, *floor_groups)
    floor_cores = sum(floor_cpu.used[g] for g in floor_groups) / floor_cpu.wall
    run.add(
        Row(
            SECTION,
            f"leads/s receipt→opportunity, backlog of {len(ids)}, 1 worker × {CONCURRENCY} processes",
            drained,
            "/s",
            baseline=f"the delivery floor: {CONCURRENCY} plain loops, same calls, 3 commits a lead",
            baseline_value=floor_rate,
            target="≥ 0.5 of the floor",
            met=at_least(drained, 0.5 * floor_rate),
            note=(
                f"worker {cpu.cores('worker'):.2f} cores, floor {floor_cores:.2f};"
                f" Celery no-op tasks/s, same broker and settings: {noop_rate:,.0f};"
                f" while leadrelay drains: {waits.summary()}; the floor: {floor_waits.summary()}"
            ),
        )
    )
    run.add(
        Row(
            SECTION,
            "worker CPU per lead (process CPU, the worker's whole process group)",
            worker_ms,
            "ms",
            baseline="the floor's CPU per lead",
            baseline_value=floor_ms,
            target="≤ 8 ms",
            met=at_most(worker_ms, 8),
            note=(
                "bench database's Postgres backends per lead:"
                f" {per_lead(cpu, metered, 'backends'):.2f} ms under leadrelay,"
                f" {per_lead(floor_cpu, floor_metered, 'backends'):.2f} ms under the floor;"
                f" counted from the first delivery on ({metered} and {floor_metered} leads),"
                " start-up left out"
            ),
        )
    )
    run.add(
        Row(
            SECTION,
            "sandbox (Nexudus stand-in) CPU per lead, serving leadrelay",
            per_lead(cpu, metered, "sandbox"),
            "ms",
            baseline="the same sandbox serving the floor",
            baseline_value=per_lead(floor_cpu, floor_metered, "sandbox"),
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
