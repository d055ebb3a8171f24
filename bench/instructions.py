"""``python -m bench.instructions [SMALL LARGE] [--message M]``: the worker's own instructions a lead.

On a shared two-core host the CPU time of the same code swings by a quarter between
runs (bench/PROFILE.md, twenty-seventh pass: ``bench.per_lead`` gave 7.1–11.9 ms a
lead for one commit in eight runs), so a change worth a few per cent cannot be seen
in seconds. Instructions can: valgrind's cachegrind counts what a process executes,
and the same code on the same inputs executes nearly the same count whatever else
the machine does (three runs of one commit over 100 leads agreed within 0.2 %).

``bench.per_lead`` runs under cachegrind twice, with SMALL and LARGE leads (default
40 and 540; its first 20 warm its caches in both), in messages of M leads as the
worker runs a backlog's (``--message``, passed on; its default is ``bench.per_lead``'s,
the worker's ``LEADRELAY_LEADS_PER_MESSAGE``), one after the other (they share
the bench database). The difference over LARGE − SMALL is the worker's instructions
a lead: ingest, reading, claim and delivery, user space only. Run it more than once:
some runs miss a cost of about 240 million instructions that the others count (one
of eight over 100 leads, one of two over 500, the heap frozen or not; what it is was
not found), so compare runs that agree, and keep the window long (over 500 leads that
cost is half a million a lead). The sandbox is a child
process and Postgres a server, neither counted; the kernel's work (system calls,
waking Postgres) is not in it either, so a change that trades a round trip for more
Python shows here as more, and must be judged with what it saves elsewhere. Hash
seeds are fixed, so that two runs take the same paths. Needs ``valgrind`` (Debian's
package); the two runs take about two minutes.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import env

USAGE = "usage: python -m bench.instructions [SMALL LARGE] [--message M]"
_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def counted(leads: int, extra_args: list[str]) -> int:
    """Instructions the process of ``python -m bench.per_lead LEADS [--message M]`` executed."""
    with tempfile.TemporaryDirectory(prefix="leadrelay-instructions-") as work:
        report = Path(work, "cachegrind.err")
        command = [
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=no",
            "--cachegrind-out-file=/dev/null",
            f"--log-file={report}",
            sys.executable,
            "-m",
            "bench.per_lead",
            str(leads),
            *extra_args,
        ]
        environment = {**os.environ, "PYTHONHASHSEED": "0"}
        run = subprocess.run(
            command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        if run.returncode:
            raise RuntimeError(f"bench.per_lead {leads} failed under valgrind:\n{run.stderr[-2000:]}")
        found = _REFS.search(report.read_text())
    if found is None:
        raise RuntimeError(f"cachegrind printed no instruction count for {leads} leads")
    return int(found.group(1).replace(",", ""))


def main(small: int, large: int, message: int | None) -> None:
    if large <= small or small <= 20:
        raise SystemExit(f"{USAGE}, 20 < SMALL < LARGE")
    passed = [] if message is None else ["--message", str(message)]
    print(f"the code at {env.measured_code()}")
    few, many = counted(small, passed), counted(large, passed)
    print(f"{small} leads: {few:,} instructions; {large} leads: {many:,}")
    print(f"the worker's own instructions a lead: {(many - few) / (large - small) / 1e6:.2f} million")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.instructions")
    parser.add_argument("sizes", nargs="*", type=int, default=[40, 540], help="SMALL LARGE")
    parser.add_argument("--message", type=int, default=None, help="leads a message (bench.per_lead's)")
    args = parser.parse_args()
    if len(args.sizes) != 2:
        raise SystemExit(USAGE)
    main(*args.sizes, args.message)
