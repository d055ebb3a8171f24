"""``python -m bench.profile receiver|worker``: py-spy on a real process under bench load.

receiver: one receiver process, wrk replaying signed webhooks as fast as it answers.
worker: one worker (prefork, concurrency 2) draining a backlog against the sandbox
(limits off). py-spy samples the process group (``--subprocesses``) and writes
collapsed stacks to bench/results/profile-NAME.txt; the top functions by own
time and by total time are printed (``--idle`` off: waiting on a socket is not CPU).
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import env, ledger, signed
from bench.loadgen import run_wrk
from bench.procstat import CpuMeter
from leadrelay.routing import load_routing
from leadrelay.worker.queue import enqueue

RESULTS = Path(__file__).with_name("results")
# leaf frames that wait (a socket, a lock, the event loop): py-spy does not always see them as idle
WAITS = {"wait", "select", "run", "get", "_read_from_socket", "recv", "poll", "sleep"}


def _record(pid: int, out: Path, seconds: int) -> subprocess.Popen[bytes]:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))  # the venv's, unactivated
    args = [spy, "record", "--pid", str(pid), "--subprocesses", "--format", "raw", "--rate", "200",
            "--duration", str(seconds), "--output", str(out), "--nonblocking"]  # fmt: skip
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summarise(collapsed: Path, top: int = 25) -> str:
    """Own and total sample shares per function from py-spy's collapsed stacks."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        frames = [f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0] + ")" for f in stack.split(";")]
        if frames[-1].split(" (")[0].split(".")[-1] in WAITS:
            continue
        samples += n
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    lines = [f"{samples} samples on CPU (waits left out)", "", "own time:"]
    lines += [f"  {n / samples:6.1%}  {frame}" for frame, n in own.most_common(top)]
    lines += ["", "total time (frames below included):"]
    lines += [f"  {n / samples:6.1%}  {frame}" for frame, n in total.most_common(top * 2)]
    return "\n".join(lines)


def profile_receiver(work: Path, seconds: int) -> Path:
    url = env.fresh_database(env.DB_NAME)
    env.flush_redis()
    routing_path = env.routing_file(work / "routing.yaml", limits=env.UNLIMITED)
    secret = signed.secret(load_routing(routing_path))
    receiver, base = env.receiver(env.service_env(url, routing_path, work), work, workers=1)
    out = RESULTS / "profile-receiver.txt"
    with env.processes(receiver):
        requests = signed.write_requests(work / "requests.tsv", secret, 4000 * seconds, tag="prof")
        spy = _record(receiver.popen.pid, out, seconds)
        with CpuMeter({"receiver": receiver.popen.pid}) as cpu:
            result = run_wrk(base, requests, connections=32, seconds=seconds)
        spy.wait()
    per = 1000 / max(1, result.accepted)
    print(
        f"receiver, 1 process: {result.accepted / result.seconds:,.0f} webhooks/s accepted;"
        f" CPU per webhook: receiver {cpu.used['receiver'] * per:.2f} ms,"
        f" Postgres {cpu.used['postgres'] * per:.2f} ms"
    )
    env.flush_redis()
    return out


def profile_worker(work: Path, seconds: int) -> Path:
    url, sandbox, _, service = env.unlimited_delivery(work)
    out = RESULTS / "profile-worker.txt"
    try:
        ids = ledger.ingest(url, [signed.lead(n, tag="prof") for n in range(3000)])
        worker = env.worker(service, work, concurrency=2)
        with env.processes(worker):
            time.sleep(4)  # the pool is up
            enqueue(ids)
            with CpuMeter({"worker": worker.popen.pid, "sandbox": sandbox.proc.popen.pid}) as cpu:
                spy = _record(worker.popen.pid, out, seconds)
                spy.wait()
            done = ledger.times(url, ids=ids)
        per = 1000 / max(1, len(done))
        print(
            f"worker: {ledger.drain_rate(done):,.1f} leads/s ({len(done)} delivered); CPU per lead:"
            f" worker {cpu.used['worker'] * per:.2f} ms, sandbox {cpu.used['sandbox'] * per:.2f} ms,"
            f" Postgres {cpu.used['postgres'] * per:.2f} ms"
        )
    finally:
        sandbox.stop()
        env.flush_redis()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("target", choices=["receiver", "worker"])
    parser.add_argument("--seconds", type=int, default=15)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="leadrelay-profile-"))
    RESULTS.mkdir(exist_ok=True)
    run = profile_receiver if args.target == "receiver" else profile_worker
    out = run(work, args.seconds)
    print(summarise(out))


if __name__ == "__main__":
    main()
