"""``python -m bench.ingest_rates [--receivers N] [--seconds S]``: the receiver across offered rates.

Section 1 of ``python -m bench`` measures the door at 1,000/s and at its maximum;
this shows how its cost per webhook moves with the rate (a batch's fixed costs
weigh on a quiet door, not on a busy one). A fresh bench ledger, no Celery worker
(the receiver's commit and publish are all that run), wrk replaying pre-signed
deliveries at each rate for S seconds, after a 3-second warm-up; printed per rate:
the rate achieved, latency percentiles, and the CPU of the receiver's processes
and of the bench database's Postgres backends, in cores and in ms a webhook.
To compare two versions of the code, run it from each checkout's own directory
(``python -m`` puts the working directory before ``PYTHONPATH``), interleaved,
at least twice each (PROFILE.md, fourteenth pass); the first line says which code ran.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from bench import env, signed
from bench.ingest import _phase
from bench.procstat import CpuMeter
from leadrelay.routing import load_routing

RATES = (200, 500, 1000, 0)  # 0: as fast as the receiver answers


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest_rates", description=__doc__.split("\n")[0])
    parser.add_argument("--receivers", type=int, default=2, help="uvicorn worker processes (default 2)")
    parser.add_argument("--seconds", type=int, default=8, help="seconds at each rate (default 8)")
    args = parser.parse_args()
    print(f"the code at {env.measured_code()}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="leadrelay-rates-"))
    url = env.fresh_database(env.DB_NAME)
    env.flush_redis()
    routing_path = env.routing_file(work / "routing.yaml", limits=env.UNLIMITED)
    secret = signed.secret(load_routing(routing_path))
    receiver, base = env.receiver(env.service_env(url, routing_path, work), work, workers=args.receivers)
    rows = []
    with env.processes(receiver):
        _phase(base, work, secret, rate=0, seconds=3, tag="warm")
        for rate in RATES:
            with CpuMeter({"receiver": receiver.popen.pid}) as cpu:
                run = _phase(base, work, secret, rate=rate, seconds=args.seconds, tag=f"rate{rate}")
            cores = {name: used / run.seconds for name, used in cpu.used.items()}
            rows.append(
                {
                    "offered": rate or "max",
                    "achieved": round(run.rate),
                    "p50_ms": run.p50_ms,
                    "p99_ms": run.p99_ms,
                    "receiver_cores": round(cores["receiver"], 2),
                    "receiver_ms": round(1000 * cores["receiver"] / max(run.rate, 1), 3),
                    "postgres_ms": round(1000 * cores["backends"] / max(run.rate, 1), 3),
                }
            )
            row = rows[-1]
            print(
                f"offered {row['offered']!s:>4}: {row['achieved']:>5,}/s  p50 {run.p50_ms:6.2f} ms"
                f"  p99 {run.p99_ms:6.2f} ms  receiver {row['receiver_cores']:.2f} cores"
                f" = {row['receiver_ms']:.2f} ms a webhook, Postgres {row['postgres_ms']:.2f} ms",
                flush=True,
            )
    env.flush_redis()
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
