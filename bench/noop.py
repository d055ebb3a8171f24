"""The broker baseline: Celery's own no-op task throughput on the same Redis, same settings.

``celery -A bench.noop worker`` runs this app: the same broker, the same
reliability settings as leadrelay's workers (acks_late, prefetch 1, JSON, prefork
with the same concurrency), and a task that does nothing. The first and last
tasks of a batch note the time in Redis, so the rate is measured by the worker's
own clock from the first consumed message to the last, like the pipeline's.
"""

from __future__ import annotations

import os
import time

import redis
from celery import Celery

from bench.env import REDIS_URL
from bench.procstat import PeakRss

QUEUE = "bench.noop"
STAMP = "bench:noop:stamps"

app = Celery("bench_noop")
app.conf.update(
    broker_url=REDIS_URL,
    broker_transport_options={"visibility_timeout": 3600},
    broker_connection_retry_on_startup=True,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    task_serializer="json",
    accept_content=["json"],
    task_default_queue=QUEUE,
    worker_hijack_root_logger=False,
    worker_send_task_events=False,
)


@app.task(name="bench.noop")
def noop(n: int) -> None:
    return None


@app.task(name="bench.stamp")
def stamp(label: str) -> None:
    redis.Redis.from_url(REDIS_URL).hset(STAMP, label, repr(time.time()))


def measure(count: int, *, concurrency: int, logdir: str) -> tuple[float, int]:
    """Fill the queue with ``count`` no-ops between two stamps, start a worker; (tasks/s, peak RSS)."""
    import subprocess
    import sys

    client = redis.Redis.from_url(REDIS_URL)
    client.delete(STAMP, QUEUE)
    with app.producer_or_acquire() as producer:
        stamp.apply_async(args=["first"], producer=producer)
        for n in range(count):
            noop.apply_async(args=[n], producer=producer)
        stamp.apply_async(args=["last"], producer=producer)
    args = [sys.executable, "-m", "celery", "-A", "bench.noop", "worker", f"--concurrency={concurrency}",
            "--pool=prefork", "--without-gossip", "--without-mingle", "--loglevel=WARNING",
            f"--queues={QUEUE}"]  # fmt: skip
    with open(os.path.join(logdir, "noop-worker.log"), "ab") as log:
        worker = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            with PeakRss({"noop": worker.pid}) as rss:
                deadline = time.monotonic() + 300
                while client.hget(STAMP, "last") is None:
                    if time.monotonic() > deadline or worker.poll() is not None:
                        raise RuntimeError("the no-op worker did not finish its batch")
                    time.sleep(0.2)
        finally:
            os.killpg(worker.pid, 15)
            worker.wait(timeout=30)
    first, last = (float(client.hget(STAMP, k)) for k in ("first", "last"))  # type: ignore[arg-type]
    client.delete(STAMP, QUEUE)
    return count / (last - first), rss.per_process.get("noop", 0)
