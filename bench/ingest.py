"""1. Ingest: signed webhooks accepted with a durable commit, against the bare ingest floor.

Receiver: ``leadrelay serve`` (uvicorn workers as given), on a fresh ledger; no
Celery worker runs, so the receiver's commit + publish is all that is measured (a batch
goes out as one fan-out message; the worker that would publish its ids one by one, ~89 µs
each, is not running: that cost is the delivery's, section 2).
Load: wrk replays pre-signed deliveries (valid signatures, fresh timestamps, unique
webhook-ids) — first at a fixed 1,000/s for latency, then as fast as it is answered
for the sustained maximum — with the same number of connections as pgbench's clients.
The floor (``floor_ingest.py``: a bare ASGI callable, HMAC + the same INSERT, same
uvicorn worker count) takes the same two phases from the same wrk script first, on
a ledger of its own; pgbench (Postgres alone) is kept in the notes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from bench import env, floors, ledger, pgbench, signed
from bench.loadgen import WrkRun, run_wrk
from bench.procstat import CpuMeter, PeakRss
from bench.results import Row, Run, at_least, at_most
from leadrelay.routing import load_routing

SECTION = "1. Ingest"
CLIENTS = 32
FIXED_RATE = 1000


@dataclass(frozen=True)
class Sizes:
    seconds: int = 15
    receivers: int = 2


def _phase(base: str, work: Path, secret: bytes, *, rate: float, seconds: int, tag: str) -> WrkRun:
    expected = int((rate or 5000) * seconds * 1.3) + 1000
    requests = signed.write_requests(work / f"requests-{tag}.tsv", secret, expected, tag=tag)
    run = run_wrk(base, requests, connections=CLIENTS, seconds=seconds, rate=rate)
    requests.unlink()
    return run


@dataclass(frozen=True)
class Measured:
    fixed: WrkRun
    top: WrkRun
    committed: int  # rows committed during the max phase
    cpu: dict[str, float]  # CPU seconds during the max phase: "receiver", "postgres"

    @property
    def rate(self) -> float:
        return self.committed / self.top.seconds

    def ms_per_item(self, label: str) -> float:
        return 1000 * self.cpu[label] / max(1, self.committed)


def _floor(work: Path, service: dict[str, str], url: str, secret: bytes, sizes: Sizes) -> Measured:
    receiver, base = floors.receiver(service, work, url=url, key=secret, workers=sizes.receivers)
    with env.processes(receiver):
        _phase(base, work, secret, rate=0, seconds=3, tag="floor-warm")
        fixed = _phase(base, work, secret, rate=FIXED_RATE, seconds=sizes.seconds, tag="floor-fixed")
        before = ledger.count(url)
        with CpuMeter({"receiver": receiver.popen.pid}) as cpu:
            top = _phase(base, work, secret, rate=0, seconds=sizes.seconds, tag="floor-max")
        after = ledger.count(url)
    if top.errors or top.accepted != top.requests:
        print(f"  floor: {top.requests} sent, statuses {top.statuses}, {top.errors} errors", flush=True)
    return Measured(fixed, top, after - before, cpu.used)


def bench_ingest(run: Run, work: Path, sizes: Sizes) -> dict[str, int]:
    """Rows for section 1; returns the receiver's peak RSS (bytes) for section 5."""
    print(f"\n== {SECTION}", flush=True)
    url = env.fresh_database(env.DB_NAME)
    env.flush_redis()
    routing_path = env.routing_file(work / "routing.yaml", limits=env.UNLIMITED)
    secret = signed.secret(load_routing(routing_path))
    body = json.dumps(signed.lead(0), separators=(",", ":"))

    pgbench.prepare(url)
    fixed_pg = pgbench.run(url, body, clients=CLIENTS, seconds=sizes.seconds, rate=FIXED_RATE)
    max_pg = pgbench.run(url, body, clients=CLIENTS, seconds=sizes.seconds)
    pgbench.drop(url)

    service = env.service_env(url, routing_path, work)
    floor = _floor(work, service, url, secret, sizes)
    url = env.fresh_database(env.DB_NAME)  # leadrelay starts on an empty ledger too
    receiver, base = env.receiver(service, work, workers=sizes.receivers)
    pgid = receiver.popen.pid
    with env.processes(receiver), PeakRss({"receiver": pgid}) as rss:
        _phase(base, work, secret, rate=0, seconds=3, tag="warm")
        before = ledger.count(url)
        with CpuMeter({"receiver": pgid}) as fixed_cpu:
            fixed = _phase(base, work, secret, rate=FIXED_RATE, seconds=sizes.seconds, tag="fixed")
        middle = ledger.count(url)
        with CpuMeter({"receiver": pgid}) as max_cpu:
            top = _phase(base, work, secret, rate=0, seconds=sizes.seconds, tag="max")
        after = ledger.count(url)
    env.flush_redis()

    for phase, committed in ((fixed, middle - before), (top, after - middle)):
        if (
            phase.accepted > committed or phase.errors or phase.accepted != phase.requests
        ):  # in flight at the stop: committed, not counted
            run.notes.append(
                f"ingest: {phase.requests} sent, {phase.accepted} answered 202, {committed} rows committed, "
                f"{phase.errors} socket errors, statuses {phase.statuses}"
            )
    ours = Measured(fixed, top, after - middle, max_cpu.used)
    cpu = (
        f"CPU at max: receiver {max_cpu.used['receiver'] / top.seconds:.2f} cores"
        f" (floor {floor.cpu['receiver'] / floor.top.seconds:.2f}),"
        f" the bench database's backends {max_cpu.used['backends'] / top.seconds:.2f}, wrk {top.cores:.2f};"
        f" pgbench (Postgres alone) {max_pg.tps:,.0f}/s, p50 {fixed_pg.p50_ms or 0:.2f} ms,"
        f" p99 {fixed_pg.p99_ms or 0:.2f} ms at {FIXED_RATE}/s"
    )
    floor_name = f"the ingest floor: bare ASGI, HMAC + INSERT, {sizes.receivers} uvicorn processes"
    run.add(
        Row(
            SECTION,
            f"max sustained webhooks/s, {CLIENTS} connections, {sizes.receivers} receiver processes",
            ours.rate,
            "/s",
            baseline=floor_name,
            baseline_value=floor.rate,
            target="≥ 0.7 of the floor",
            met=at_least(ours.rate, 0.7 * floor.rate),
            note=cpu,
        )
    )
    run.add(
        Row(
            SECTION,
            f"p50 latency at {FIXED_RATE}/s offered ({fixed.rate:,.0f}/s achieved)",
            fixed.p50_ms,
            "ms",
            baseline=f"the floor at {FIXED_RATE}/s ({floor.fixed.rate:,.0f}/s achieved)",
            baseline_value=floor.fixed.p50_ms,
            note=f"receiver {fixed_cpu.used['receiver'] / fixed.seconds:.2f} cores, wrk {fixed.cores:.2f}",
        )
    )
    run.add(
        Row(
            SECTION,
            f"p99 latency at {FIXED_RATE}/s offered",
            fixed.p99_ms,
            "ms",
            baseline=f"the floor at {FIXED_RATE}/s",
            baseline_value=floor.fixed.p99_ms,
            target="≤ 25 ms",
            met=at_most(fixed.p99_ms, 25),
        )
    )
    run.add(
        Row(
            SECTION,
            "receiver CPU per webhook at the max rate (process CPU)",
            ours.ms_per_item("receiver"),
            "ms",
            baseline="the floor's CPU per webhook",
            baseline_value=floor.ms_per_item("receiver"),
            note=(
                "CPU of the bench database's Postgres backends per webhook:"
                f" {ours.ms_per_item('backends'):.2f} ms"
                f" under leadrelay, {floor.ms_per_item('backends'):.2f} ms under the floor"
            ),
        )
    )
    return {"receiver": rss.per_process.get("receiver", 0), "receiver_total": rss.total.get("receiver", 0)}
