"""The webhook load generator: wrk (C, one thread) replaying pre-signed deliveries.

wrk's own CPU is measured (from the kernel's accounting of the finished process),
so the report can say how much of the 2 cores the generator took from the receiver.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

SCRIPT = Path(__file__).with_name("replay.lua")


@dataclass(frozen=True)
class WrkRun:
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    cpu_seconds: float
    errors: int
    statuses: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def accepted(self) -> int:
        return self.statuses.get("202", 0)

    @property
    def cores(self) -> float:
        return self.cpu_seconds / self.seconds if self.seconds else 0.0


def run_wrk(
    url: str,
    requests_file: Path,
    *,
    connections: int,
    seconds: float,
    rate: float = 0,
    path: str = "/webhooks/canonical",
) -> WrkRun:
    """Replay ``requests_file`` at ``rate`` per second (0: as fast as the receiver answers)."""
    env = {
        **os.environ,
        "BENCH_REQUESTS": str(requests_file),
        "BENCH_RATE": str(rate),
        "BENCH_PATH": path,
        "BENCH_THREADS": "1",
    }
    args = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:.0f}s", "--timeout", "10s", "-s", str(SCRIPT), url]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    out = proc.stdout.read() if proc.stdout else ""
    err = proc.stderr.read() if proc.stderr else ""
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{out}\n{err}")
    data = json.loads(lines[-1])
    errors = sum(data[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts"))
    return WrkRun(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        errors=errors,
        statuses=data["statuses"],
    )
