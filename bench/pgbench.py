"""The ingest baseline: pgbench inserting the very row a webhook stores, from a C client.

The table is a copy of ``leads`` with all its indexes (``LIKE … INCLUDING ALL``),
the statement the same single-row ``INSERT … ON CONFLICT (intake_key) DO NOTHING
RETURNING id`` with a body of the same size, one transaction (and one durable
commit) per row, with the same number of clients as the HTTP load generator.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg

from bench.env import libpq_url

TABLE = "bench_pgbench_leads"
_TPS = re.compile(r"tps = ([\d.]+) \(without initial connection time\)")


@dataclass(frozen=True)
class PgbenchRun:
    tps: float
    p50_ms: float | None
    p99_ms: float | None
    cpu_seconds: float


def prepare(url: str) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        conn.execute(f"CREATE TABLE {TABLE} (LIKE leads INCLUDING ALL)")


def drop(url: str) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")


def _script(body: str) -> str:
    literal = body.replace("'", "''")
    return (
        "\\set n random(1, 2000000000)\n"
        f"INSERT INTO {TABLE} (channel, source, intake_key, received_at, content_type, raw_body, raw_sha256,"
        " raw_meta, state, state_changed_at, attempts, next_attempt_at, enqueued_at)"
        " VALUES ('canonical', 'webhook', 'webhook:canonical:msg_' || :client_id || '_' || :n, now(),"
        f" 'application/json', convert_to('{literal}', 'UTF8'), md5(:n::text) || md5(:client_id::text),"
        " jsonb_build_object('delivery_id', :n, 'timestamp', 1700000000), 'received', now(), 0, now(), now())"
        " ON CONFLICT (intake_key) DO NOTHING RETURNING id;\n"
    )


def run(url: str, body: str, *, clients: int, seconds: int, rate: float | None = None) -> PgbenchRun:
    """pgbench for ``seconds``; with ``rate``, at that fixed rate with latency percentiles."""
    with tempfile.TemporaryDirectory(prefix="bench-pgbench-") as tmp:
        script = Path(tmp) / "insert.sql"
        script.write_text(_script(body))
        args = ["pgbench", "-n", "-c", str(clients), "-j", "1", "-T", str(seconds), "-f", str(script)]
        if rate:
            args += ["-R", str(rate), "-l", "--log-prefix", str(Path(tmp) / "tx")]
        proc = subprocess.Popen(
            [*args, libpq_url(url)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp
        )
        _, status, usage = os.wait4(proc.pid, 0)
        out = proc.stdout.read() if proc.stdout else ""
        if os.waitstatus_to_exitcode(status) != 0 or not _TPS.search(out):
            raise RuntimeError(f"pgbench failed:\n{out}")
        latencies = []
        for log in Path(tmp).glob("tx*"):
            for line in log.read_text().splitlines():
                parts = line.split()
                if len(parts) >= 3 and parts[2].isdigit():
                    latencies.append(
                        int(parts[2]) / 1000
                    )  # µs → ms (a rate's schedule lag is a field of its own)
    p50 = p99 = None
    if latencies:
        cuts = statistics.quantiles(latencies, n=100)
        p50, p99 = cuts[49], cuts[98]
    return PgbenchRun(
        tps=float(_TPS.search(out).group(1)),  # type: ignore[union-attr]
        p50_ms=p50,
        p99_ms=p99,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
    )
