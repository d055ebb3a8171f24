"""`leadrelay worker` processes starting on RabbitMQ: several on one host each start under a
node name of their own and answer for themselves, and one whose ledger is not there yet waits
for it.

Celery names every worker ``celery@<host>`` and listens for remote control on an
exclusive queue named after it: the second worker on a host used to exit at start-up
(``ResourceLocked``). A worker started while Postgres restarted used to exit too.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import typer
from celery import Celery
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError, ProgrammingError

from leadrelay.children import Child
from leadrelay.cli.commands import _reached
from leadrelay.schema import upgrade
from leadrelay.testing.processes import service_env
from tests.conftest import PG_ADMIN_URL, PG_URL
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


def worker_env(broker: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    return service_env(
        LEADRELAY_BROKER_URL=broker,
        LEADRELAY_DATA_DIR=str(tmp_path),
        NEXUDUS_BASE_URL="http://127.0.0.1:9",  # no lead is sent: nothing calls it
        NEXUDUS_USERNAME="sandbox@leadrelay.local",
        NEXUDUS_PASSWORD="sandbox",
        **extra,
    )


def test_workers_on_one_host_each_start_and_answer_under_their_own_name(
    clean_db: str, rabbit_broker: str, control: Celery, tmp_path: Path
) -> None:
    env = worker_env(rabbit_broker, tmp_path)
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


WAITING = "cannot reach the ledger database yet (OperationalError: "


@pytest.fixture
def ledger_later(pg_url: str) -> Iterator[str]:
    """The URL of a ledger that is not there yet (nor left over from an earlier run)."""
    missing = f"{PG_URL}_later"
    database = missing.rsplit("/", 1)[1]
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")

    def drop() -> None:
        with admin.connect() as conn:
            for made in (database, f"{database}_prep"):
                conn.execute(text(f"DROP DATABASE IF EXISTS {made} WITH (FORCE)"))

    drop()
    try:
        yield missing
    finally:
        drop()
        admin.dispose()


def late_worker(broker: str, ledger: str, tmp_path: Path, name: str) -> Child:
    args = ["worker", "--concurrency", "1", "--pool", "prefork", "--no-beat", "--name", name]
    return Child(
        "worker", args, env=worker_env(broker, tmp_path, LEADRELAY_DATABASE_URL=ledger), logdir=tmp_path
    )


def waiting(worker: Child) -> None:
    wait_for(lambda: WAITING in worker.said(), timeout=60, interval=0.2, what="the worker to say it waits")


def test_a_worker_started_before_its_ledger_waits_for_it_then_runs(
    ledger_later: str, rabbit_broker: str, control: Celery, tmp_path: Path
) -> None:
    """As when a worker is (re)started while Postgres restarts: it says so and goes on once it can."""
    database = ledger_later.rsplit("/", 1)[1]
    name = f"late-ledger-{os.getpid()}"  # the broker is shared with other runs on this host
    worker = late_worker(rabbit_broker, ledger_later, tmp_path, name)
    try:
        waiting(worker)
        assert f'database "{database}" does not exist' in worker.said()  # libpq's reason, for the operator
        # made under another name, then renamed: the worker must not find it half migrated
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {database}_prep"))
        upgrade(f"{ledger_later}_prep")
        with admin.connect() as conn:
            conn.execute(text(f"ALTER DATABASE {database}_prep RENAME TO {database}"))
        admin.dispose()

        def answers() -> bool:
            assert worker.alive, worker.tail(10)
            return any(node.startswith(f"{name}@") for node in answering(control))

        wait_for(answers, timeout=90, interval=0.5, what="the worker to answer once its ledger is there")
    finally:
        worker.stop()


def test_sigterm_ends_the_wait_at_once(ledger_later: str, rabbit_broker: str, tmp_path: Path) -> None:
    """A container's first process ignores SIGTERM without a handler: the wait has one."""
    worker = late_worker(rabbit_broker, ledger_later, tmp_path, f"stopped-waiting-{os.getpid()}")
    try:
        waiting(worker)
        worker.terminate()
        assert worker.popen.wait(timeout=10) == 128 + signal.SIGTERM
    finally:
        worker.stop()


def unreachable(message: str) -> OperationalError:
    return OperationalError("SELECT 1", None, psycopg.OperationalError(f"connection failed:\n{message}"))


def test_a_ledger_never_reached_ends_the_wait_with_what_to_check(capsys: pytest.CaptureFixture[str]) -> None:
    tries: list[int] = []

    def down() -> bool:
        tries.append(1)
        raise unreachable("Connection refused")

    with pytest.raises(typer.Exit):
        _reached(down, wait=1.0)
    err = capsys.readouterr().err
    assert len(tries) >= 2
    assert "cannot reach the ledger database yet (OperationalError: Connection refused)" in err
    assert "after 1 s (OperationalError: Connection refused): check LEADRELAY_DATABASE_URL" in err


@pytest.mark.parametrize(
    "error",
    [
        unreachable('FATAL:  password authentication failed for user "leadrelay"'),
        unreachable('FATAL:  role "leadrelay" does not exist'),
        ProgrammingError(
            "SELECT version_num FROM alembic_version", None, psycopg.errors.InsufficientPrivilege()
        ),
    ],
    ids=["password", "role", "rights"],
)
def test_a_ledger_that_answers_no_ends_it_at_once(
    error: Exception, capsys: pytest.CaptureFixture[str]
) -> None:
    tries: list[int] = []

    def refused() -> bool:
        tries.append(1)
        raise error

    with pytest.raises(typer.Exit):
        _reached(refused, wait=30.0)
    assert tries == [1]
    assert "check LEADRELAY_DATABASE_URL" in capsys.readouterr().err


def test_a_ledger_reached_at_once_is_asked_once() -> None:
    tries: list[int] = []
    assert _reached(lambda: bool(tries.append(1)), wait=30.0) is False
    assert tries == [1]
