"""3. Nexudus budget on a real clock: the sandbox at speed 1, from the first write to the last.

The sped-up clock of ``budget.py`` shortens the budget's waits by its factor, but
not the fixed costs around them (a hand-back's trip through the ledger, the
sweeper's pass, a dispatch, a lead's sequential calls): so the same backlog is
delivered here at speed 1 — 3 worker processes (concurrency 1) and beat, the
documented limits, all of a backlog of ``backlog`` leads of one account — and
the writes/min are read from the sandbox's request log (wall-clock times).

Where the seconds go: every gap between two writes longer than the budget's
spacing (60 s / (60 × safety)) is time lost; each such gap is classed by what the
sandbox saw in it (a lookup — the next lead's first call — or nothing at all) and
the hand-backs (``lead_processed`` with outcome ``throttled`` in the workers' logs)
are counted. ``--budget-wait`` runs vary ``LEADRELAY_BUDGET_WAIT_SECONDS``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import env, ledger, signed
from bench.results import Row, Run, at_least
from leadrelay.worker.queue import enqueue

SECTION = "3. Nexudus budget"
WORKERS = 3
CEILING = 60.0
SAFETY = 0.97  # the routing's default: the budget aims at this share of each limit


@dataclass
class ClockRun:
    writes: list[float]  # wall-clock times of the admitted writes
    requests: list[dict[str, Any]]  # the sandbox's log of the main tenant
    delivered: int
    handbacks: int  # deliveries handed back to wait for the budget
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def span(self) -> float:
        return self.writes[-1] - self.writes[0] if len(self.writes) > 1 else 0.0

    @property
    def per_minute(self) -> float:
        return (len(self.writes) - 1) / self.span * 60 if self.span else 0.0

    def losses(self) -> dict[str, float]:
        """Seconds beyond the budget's spacing between writes, by what the sandbox saw in the gap."""
        spacing = 60 / (CEILING * SAFETY)
        reads = sorted(r["at"] for r in self.requests if r["method"] == "GET")
        lost = {
            "gap with a lookup in it": 0.0,
            "idle gap (nothing sent)": 0.0,
            "gaps over 1.5 × spacing": 0.0,
        }
        for a, b in zip(self.writes, self.writes[1:], strict=False):
            excess = b - a - spacing
            if excess <= 0:
                continue
            looked = any(a < t < b for t in reads)
            lost["gap with a lookup in it" if looked else "idle gap (nothing sent)"] += excess
            if b - a > 1.5 * spacing:
                lost["gaps over 1.5 × spacing"] += 1
        return lost


def _handbacks(work: Path) -> int:
    count = 0
    for log in work.glob("clock-worker*.log"):
        for line in log.read_text(errors="replace").splitlines():
            if '"lead_processed"' in line and '"throttled"' in line:
                count += 1
    return count


def run_clock(
    work: Path,
    *,
    backlog: int,
    speed: float = 1.0,
    extra: dict[str, str] | None = None,
    concurrent: int | None = None,
) -> ClockRun:
    """Deliver a backlog of ``backlog`` leads with the documented limits; the sandbox's view of it.

    ``concurrent``: the account's ``concurrent_deliveries`` (default: the routing's default).
    """
    extra = extra or {}
    limits: dict[str, float] = {"clock_speed": speed}
    if concurrent is not None:
        limits["concurrent_deliveries"] = concurrent
    url = env.fresh_database(env.DB_NAME)
    env.flush_redis()
    sandbox = env.sandbox(work, limits=True, speed=speed)
    routing_path = env.routing_file(work / "routing-clock.yaml", limits=limits)
    service = env.service_env(url, routing_path, work, NEXUDUS_BASE_URL=sandbox.base_url, **extra)
    env.use_env(service)
    for old in work.glob("clock-worker*.log"):
        old.unlink()
    workers = [env.worker(service, work, f"clock-worker{n}", concurrency=1) for n in range(WORKERS)]
    try:
        with env.processes(*workers, env.beat(service, work)):
            time.sleep(5)  # pools up
            ids = ledger.ingest(url, [signed.lead(n, tag="clock") for n in range(backlog)])
            enqueue(ids)
            deadline = time.monotonic() + backlog * 3 / speed + 120
            while len(ledger.times(url, ids=ids)) < backlog and time.monotonic() < deadline:
                time.sleep(1)
        delivered = len(ledger.times(url, ids=ids))
        main = [r for r in sandbox.requests() if r["tenant"] == "sandbox@leadrelay.local"]
    finally:
        sandbox.stop()
        env.flush_redis()
    writes = sorted(r["at"] for r in main if r["method"] != "GET" and r["status"] == 200)
    return ClockRun(writes, main, delivered, _handbacks(work), extra)


def describe(clock: ClockRun) -> str:
    lost = clock.losses()
    return (
        f"{len(clock.writes)} writes in {clock.span:.0f} s ({clock.delivered} leads,"
        f" {clock.handbacks} hand-backs to wait for the budget); seconds lost beyond the budget's spacing:"
        f" {lost['gap with a lookup in it']:.1f} s in gaps with the next lead's lookup,"
        f" {lost['idle gap (nothing sent)']:.1f} s in idle gaps; {lost['gaps over 1.5 × spacing']:.0f} gaps"
        f" over 1.5 × the spacing"
    )


def bench_budget_clock(run: Run, work: Path, backlog: int) -> ClockRun:
    print(f"\n== {SECTION} on a real clock", flush=True)
    clock = run_clock(work, backlog=backlog)
    (work / "clock-requests.json").write_text(json.dumps(clock.requests))
    run.add(
        Row(
            SECTION,
            f"writes/min on a real clock (sandbox ×1), first write to last, backlog of {backlog},"
            f" {WORKERS} workers",
            clock.per_minute,
            "/min",
            baseline="Nexudus ceiling",
            baseline_value=CEILING,
            target="≥ 95 % of 60",
            met=at_least(clock.per_minute, 0.95 * CEILING),
            note=describe(clock),
        )
    )
    return clock


def main() -> None:
    """``python -m bench.budget_clock [--backlog N] [--budget-wait S] [--concurrent N]``: one run, printed."""
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(prog="python -m bench.budget_clock")
    parser.add_argument("--backlog", type=int, default=60)
    parser.add_argument(
        "--budget-wait", type=float, help="LEADRELAY_BUDGET_WAIT_SECONDS (default: the setting's)"
    )
    parser.add_argument("--concurrent", type=int, help="the account's concurrent_deliveries (default: 2)")
    args = parser.parse_args()
    extra = {} if args.budget_wait is None else {"LEADRELAY_BUDGET_WAIT_SECONDS": str(args.budget_wait)}
    work = Path(tempfile.mkdtemp(prefix="leadrelay-clock-"))
    clock = run_clock(work, backlog=args.backlog, extra=extra, concurrent=args.concurrent)
    (work / "clock-requests.json").write_text(json.dumps(clock.requests))
    setup = {**extra, "concurrent_deliveries": args.concurrent or 2}
    print(
        f"{clock.per_minute:.1f} writes/min on a real clock ({setup}, span {clock.span:.1f} s):"
        f" {describe(clock)}; logs {work}"
    )


if __name__ == "__main__":
    main()
