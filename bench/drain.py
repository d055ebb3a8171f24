"""``python -m bench.drain [LEADS]``: leadrelay's drain of a backlog alone, and what Postgres does meanwhile.

The pipeline section's first half without its floor, its latency phase or Celery's
no-op, so that two versions of the worker can be compared in interleaved runs of
half a minute: a backlog of signed leads recorded in a fresh ledger, one worker
(prefork × 2, as the section's) against the sandbox with limits off; CPU counted
from the first delivery on, as the section counts it. It prints the rate (first
delivery to last), CPU a lead for the worker, the bench database's backends and
the sandbox, and what the backends were doing, by statement (``waits.py``, every
20 ms): the time a statement runs or waits on a lock or a flush, not its count.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench import env, ledger, signed
from bench.pipeline import drain


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.drain")
    parser.add_argument("leads", nargs="?", type=int, default=1500)
    parser.add_argument("--top", type=int, default=15, help="statements shown")
    args = parser.parse_args()
    if not 100 <= args.leads <= 100_000:
        parser.error("leads: 100 to 100,000")
    with tempfile.TemporaryDirectory(prefix="bench-drain-") as tmp:
        work = Path(tmp)
        url, sandbox, _, service = env.unlimited_delivery(work)
        try:
            ids = ledger.ingest(url, [signed.lead(n, tag="d") for n in range(args.leads)])
            done = drain(url, service, work, sandbox, ids)
        finally:
            sandbox.stop()
            env.flush_redis()
    cpu = done.cpu
    per_lead = {label: 1000 * cpu.used[label] / done.metered for label in ("worker", "backends", "sandbox")}
    print(
        f"{done.rate:.1f} leads/s; CPU a lead (the last {done.metered} leads):"
        f" worker {per_lead['worker']:.2f} ms ({cpu.cores('worker'):.2f} cores),"
        f" Postgres backends {per_lead['backends']:.2f} ms,"
        f" sandbox {per_lead['sandbox']:.2f} ms"
    )
    print(done.waits.summary())
    print("backends on average, by what they did and the statement:")
    for share, event, statement in done.waits.by_statement(args.top):
        print(f"  {share:5.3f}  {event:<20} {statement}")


if __name__ == "__main__":
    main()
