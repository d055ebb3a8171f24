"""Several `leadrelay worker` processes on one host, on RabbitMQ: each starts under a node name
of its own and answers for itself.

Celery names every worker ``celery@<host>`` and listens for remote control on an
exclusive queue named after it: the second worker on a host used to exit at start-up
(``ResourceLocked``).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery

from leadrelay.children import Child
from leadrelay.testing.processes import service_env
from tests.helpers import wait_for


@pytest.fixture
def control(rabbit_broker: str) -> Iterator[Celery]:
    app = Celery("worker-nodes-test", broker=rabbit_broker)
    try:
        yield app
    finally:
        app.close()


def answering(control: Celery) -> set[str]:
    """The node names of the workers that answer a ping on the broker."""
    return {name for reply in control.control.ping(timeout=1) for name in reply}


def test_workers_on_one_host_each_start_and_answer_under_their_own_name(
    clean_db: str, rabbit_broker: str, control: Celery, tmp_path: Path
) -> None:
    env = service_env(
        LEADRELAY_BROKER_URL=rabbit_broker,
        LEADRELAY_DATA_DIR=str(tmp_path),
        NEXUDUS_BASE_URL="http://127.0.0.1:9",  # no lead is sent: nothing calls it
        NEXUDUS_USERNAME="sandbox@leadrelay.local",
        NEXUDUS_PASSWORD="sandbox",
    )
    args = ["worker", "--concurrency", "1", "--pool", "prefork", "--no-beat"]
    before = answering(control)  # another test run's workers on the same broker, if any
    workers = [
        Child("worker0", args, env=env, logdir=tmp_path),
        Child("worker1", args, env=env, logdir=tmp_path),
        Child("worker2", args, env={**env, "LEADRELAY_WORKER_NAME": "front-desk"}, logdir=tmp_path),
    ]
    try:
        # a name without a host gets this host's (Celery alone would make it celery@front-desk)
        ours = {f"leadrelay-{w.popen.pid}@{socket.gethostname()}" for w in workers[:2]}
        ours.add(f"front-desk@{socket.gethostname()}")

        def all_answer() -> bool:
            down = [w.name for w in workers if not w.alive]
            assert not down, f"{down} exited:\n" + "\n".join(w.tail(5) for w in workers if not w.alive)
            return answering(control) - before >= ours

        wait_for(all_answer, timeout=90, interval=0.5, what=f"{sorted(ours)} to answer a ping")
        assert all(w.alive for w in workers)
    finally:
        for w in workers:
            w.stop()
