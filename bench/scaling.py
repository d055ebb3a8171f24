"""``python -m bench.scaling``: the pipeline with 2, 4, 8 worker processes and 1, 10, 100 accounts.

Each point: a fresh ledger, the sandbox with its limits off serving ``accounts``
tenants (one Nexudus account each, one location each), a backlog of ``backlog``
leads spread evenly over the accounts, then one ``leadrelay worker`` with
``--concurrency processes`` (prefork) draining it. leadrelay's own budget and
dispatch stay on (the limits are set out of reach, ``concurrent_deliveries`` 16),
so every Nexudus request still reserves its slot under its account's row lock.
Measured: leads/s between the first and the last delivery, worker CPU per lead,
and how often a sampled backend of the bench database was waiting for a lock.
Writes bench/results/scaling.json; SCALING.md reads it.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg
import yaml

from bench import env, ledger, signed
from bench.procstat import CpuMeter
from leadrelay.worker.queue import enqueue

RESULTS = Path(__file__).with_name("results") / "scaling.json"


def _routing(path: Path, accounts: int) -> Path:
    data = yaml.safe_load(resources.files("leadrelay").joinpath("default_routing.yaml").read_text())
    foundry = data["locations"]["foundry"]
    data["accounts"] = {"main": {"limits": env.UNLIMITED}}
    for n in range(1, accounts):
        data["accounts"][f"a{n}"] = {
            "username": f"a{n}@bench.local",
            "password": f"pw-{n}",
            "limits": env.UNLIMITED,
        }
        data["locations"][f"loc{n}"] = {**foundry, "account": f"a{n}", "listings": {"canonical": [f"loc{n}"]}}
    path.write_text(yaml.safe_dump(data))
    return path


class LockWaits:
    """Samples pg_stat_activity every 0.25 s: backends of the bench database, and those waiting on a lock."""

    def __init__(self, url: str) -> None:
        self.url, self.samples, self.waiting, self.busy = env.libpq_url(url), 0, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        query = (
            "SELECT count(*) FILTER (WHERE wait_event_type = 'Lock'),"
            " count(*) FILTER (WHERE state = 'active')"
            " FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._stop.is_set():
                waiting, busy = conn.execute(query).fetchone() or (0, 0)
                self.samples, self.waiting, self.busy = (
                    self.samples + 1,
                    self.waiting + waiting,
                    self.busy + busy,
                )
                self._stop.wait(0.25)

    def __enter__(self) -> LockWaits:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def point(work: Path, *, processes: int, accounts: int, backlog: int) -> dict[str, Any]:
    url = env.fresh_database(env.DB_NAME)
    env.flush_redis()
    sandbox = env.sandbox(work, limits=False)
    try:
        for n in range(1, accounts):
            sandbox.add_tenant(f"a{n}@bench.local", f"pw-{n}")
        routing = _routing(work / f"routing-{accounts}.yaml", accounts)
        service = env.service_env(url, routing, work, NEXUDUS_BASE_URL=sandbox.base_url)
        env.use_env(service)
        listings = ["foundry", *(f"loc{n}" for n in range(1, accounts))]
        bodies = [
            signed.lead(n, listing=listings[n % accounts], tag=f"s{processes}x{accounts}")
            for n in range(backlog)
        ]
        ids = ledger.ingest(url, bodies)
        worker = env.worker(service, work, f"scaling-{processes}x{accounts}", concurrency=processes)
        groups = {"worker": worker.popen.pid, "sandbox": sandbox.proc.popen.pid}
        with env.processes(worker):
            time.sleep(3 + processes)  # the pool is up
            with CpuMeter(groups) as cpu, LockWaits(url) as locks:
                enqueue(ids)
                deadline = time.monotonic() + 900
                while len(ledger.times(url, ids=ids)) < backlog and time.monotonic() < deadline:
                    time.sleep(0.5)
        done = ledger.times(url, ids=ids)
    finally:
        sandbox.stop()
        env.flush_redis()
    per = 1000 / max(1, len(done))
    return {
        "processes": processes,
        "accounts": accounts,
        "backlog": backlog,
        "delivered": len(done),
        "leads_per_s": round(ledger.drain_rate(done), 2),
        "worker_cpu_ms_per_lead": round(cpu.used["worker"] * per, 2),
        "sandbox_cpu_ms_per_lead": round(cpu.used["sandbox"] * per, 2),
        "postgres_backends_cpu_ms_per_lead": round(cpu.used["backends"] * per, 2),
        "active_backends_mean": round(locks.busy / max(1, locks.samples), 2),
        "lock_waiting_backends_mean": round(locks.waiting / max(1, locks.samples), 2),
        "load_average": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scaling")
    parser.add_argument("--processes", default="2,4,8")
    parser.add_argument("--accounts", default="1,10,100")
    parser.add_argument("--backlog", type=int, default=300)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="leadrelay-scaling-"))
    found = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    for accounts in (int(a) for a in args.accounts.split(",")):
        for processes in (int(p) for p in args.processes.split(",")):
            result = point(work, processes=processes, accounts=accounts, backlog=args.backlog)
            print(json.dumps(result), flush=True)
            found = [r for r in found if (r["processes"], r["accounts"]) != (processes, accounts)] + [result]
            RESULTS.write_text(
                json.dumps(sorted(found, key=lambda r: (r["accounts"], r["processes"])), indent=1)
            )


if __name__ == "__main__":
    main()
