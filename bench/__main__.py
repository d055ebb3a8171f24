"""``python -m bench``: every measurement against its same-run baseline; table and plot.

    python -m bench            # the full run (about 17 minutes on 2 quiet cores)
    python -m bench --quick    # smaller sizes, shorter windows (a few minutes): a smoke run
    python -m bench --only ingest,dedupe

Writes bench/results/latest.md, latest.png and latest.json (or under ``--out``).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench import budget, budget_clock, dedupe, env, inbox, ingest, pipeline, report
from bench.results import Row, Run, at_most

RESULTS = Path(__file__).with_name("results")
SECTIONS = ("ingest", "pipeline", "budget", "clock", "dedupe", "memory", "inbox")
CLOCK_BACKLOG = {"full": 100, "quick": 30}  # leads of the real-clock budget run (about 2 writes each)
MB = 1024 * 1024

FULL = {
    "ingest": ingest.Sizes(seconds=20, receivers=2),
    "pipeline": pipeline.Sizes(backlog=1500, noops=5000, latency_seconds=20),
    "budget": budget.Sizes(backlog=300, window_seconds=120, others=10, speed=5.0),
    "dedupe": dedupe.Sizes(small=10_000, large=1_000_000, decisions=400),
    "inbox": inbox.Sizes(messages=1000),
}
QUICK = {
    "ingest": ingest.Sizes(seconds=5, receivers=2),
    "pipeline": pipeline.Sizes(backlog=200, noops=1000, latency_seconds=6),
    # ×5 as the full run: at ×10 the documented 100 ms between requests is 10 ms, less than this
    # host's scheduling slips, and the sends' real-time margin (budget.SEND_SLIP) would pace the run
    "budget": budget.Sizes(backlog=300, window_seconds=60, others=4, speed=5.0),
    "dedupe": dedupe.Sizes(small=10_000, large=100_000, decisions=100),
    "inbox": inbox.Sizes(messages=200, rounds=2),
}


def _machine() -> dict[str, str]:
    postgres = subprocess.run(["psql", "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "postgres": postgres.split()[2] if postgres else "?",
        "load at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def _memory(run: Run, peaks: dict[str, int]) -> None:
    section = "5. Memory"
    if "receiver" in peaks:
        run.add(
            Row(
                section,
                "peak RSS of a receiver process, under the ingest load",
                peaks["receiver"] / MB,
                "MB",
                target="≤ 150 MB",
                met=at_most(peaks["receiver"] / MB, 150),
                note=f"all receiver processes together {peaks['receiver_total'] / MB:.0f} MB",
            )
        )
    if "worker" in peaks:
        run.add(
            Row(
                section,
                "peak RSS of a worker process, under the pipeline load",
                peaks["worker"] / MB,
                "MB",
                baseline="a Celery no-op worker process, same settings",
                baseline_value=peaks["noop_worker"] / MB or None,
                target="≤ 150 MB",
                met=at_most(peaks["worker"] / MB, 150),
                note=f"the worker's whole process group (main + pool) {peaks['worker_total'] / MB:.0f} MB",
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and short windows (a smoke run)")
    parser.add_argument(
        "--only", default=",".join(SECTIONS), help=f"comma-separated, of {','.join(SECTIONS)}"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="where latest.md/.png/.json go")
    args = parser.parse_args()
    only = set(args.only.split(","))
    if unknown := only - set(SECTIONS):
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    for tool in ("wrk", "pgbench", "psql"):
        if shutil.which(tool) is None:
            parser.error(f"{tool} is not installed (see bench/README.md)")
    sizes = QUICK if args.quick else FULL
    size_name = "quick" if args.quick else "full"
    run = Run(started=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), machine=_machine())
    if args.quick:
        run.notes.append("a --quick run: smaller sizes and shorter windows than the full run")
    if os.getloadavg()[0] > (os.cpu_count() or 1):
        run.notes.append(
            f"the machine was shared and loaded (load average {os.getloadavg()[0]:.1f}"
            f" on {os.cpu_count()} cores"
            " at the start): absolute rates are low and noisy; the ratios are against floors measured in the"
            " same run, under the same load, and CPU per item is the steadier figure"
        )
    work = Path(tempfile.mkdtemp(prefix="leadrelay-bench-"))
    print(f"bench work directory (logs): {work}", flush=True)
    print(f"measuring the code at {env.measured_code()}", flush=True)
    started = time.monotonic()
    peaks: dict[str, int] = {}
    steps: list[tuple[str, Callable[[], object]]] = [
        ("ingest", lambda: peaks.update(ingest.bench_ingest(run, work, sizes["ingest"]))),
        ("pipeline", lambda: peaks.update(pipeline.bench_pipeline(run, work, sizes["pipeline"]))),
        ("budget", lambda: budget.bench_budget(run, work, sizes["budget"])),
        ("clock", lambda: budget_clock.bench_budget_clock(run, work, CLOCK_BACKLOG[size_name])),
        ("dedupe", lambda: dedupe.bench_dedupe(run, work, sizes["dedupe"])),
        ("memory", lambda: _memory(run, peaks)),
        ("inbox", lambda: inbox.bench_inbox(run, work, sizes["inbox"])),
    ]
    for name, step in steps:
        if name in only:
            step()
    run.machine["load at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    run.notes.append(f"the whole run took {(time.monotonic() - started) / 60:.1f} minutes")
    run.rows.sort(key=lambda row: row.section)
    path = report.write(run, args.out)
    print(f"\nwrote {path} and {path.with_suffix('.png')}\n", flush=True)
    print(report.table(run))


if __name__ == "__main__":
    main()
