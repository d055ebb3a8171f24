"""The receiver's async hot path: the Postgres pool, the batching publisher, and what a crash leaves."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
import traceback
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy import create_engine

from leadrelay.api.app import create_app
from leadrelay.intake.publisher import Publisher
from leadrelay.intake.store import APPLICATION_NAME, Inbound, Intake, PoolIntakeStore, conninfo
from leadrelay.models import Lead, LeadState
from leadrelay.routing import Routing
from leadrelay.runtime import Runtime
from leadrelay.worker.sweeper import sweep
from tests.conftest import ThreadedServer, make_settings
from tests.intake.test_webhooks import SAMPLE, queued, signed, stored


def inbound(key: str) -> Inbound:
    return Inbound("canonical", "webhook", key, b"{}", "application/json", {"delivery_id": key})


def test_the_pool_replaces_connections_that_died_while_idle(clean_db: str) -> None:
    """What pool_pre_ping did for the ORM: a restarted Postgres costs no failed webhook."""
    url = conninfo(create_engine(clean_db))
    backends = "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND datname = current_database()"

    def pids() -> set[int]:
        with psycopg.connect(url, autocommit=True) as admin:
            return {row[0] for row in admin.execute(backends, [APPLICATION_NAME])}

    async def scenario() -> tuple[int, int]:
        store = PoolIntakeStore(url, size=3)
        await store.open()
        try:
            first = await asyncio.gather(*(store.record(inbound(f"k{i}")) for i in range(6)))
            old = pids()
            assert old
            with psycopg.connect(url, autocommit=True) as admin:  # all of them, as a restart does
                admin.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [list(old)])
            await asyncio.sleep(0.2)
            second, publish = await store.record(inbound("k9"))
            assert publish
            assert not pids() & old
            return first[0][0].lead_id, second.lead_id
        finally:
            await store.close()

    first, second = asyncio.run(scenario())
    assert second != first


def test_a_statement_cut_short_by_a_lost_connection_is_published_when_tried_again(clean_db: str) -> None:
    """The retried insert finds the row committed by the lost one: published all the same."""
    url = conninfo(create_engine(clean_db))

    async def scenario() -> tuple[object, bool]:
        store = PoolIntakeStore(url, size=1)
        await store.open()
        try:
            await store.record(inbound("k1"))
            with psycopg.connect(url, autocommit=True) as admin:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = %s AND datname = current_database()",
                    [APPLICATION_NAME],
                )
            await asyncio.sleep(0.2)
            return await store.record(inbound("k1"))
        finally:
            await store.close()

    intake, publish = asyncio.run(scenario())
    assert intake.duplicate and publish  # type: ignore[attr-defined]


def test_a_store_opened_before_a_fork_opens_its_own_pool_in_the_child(clean_db: str, tmp_path: Path) -> None:
    url = conninfo(create_engine(clean_db))
    why = tmp_path / "child.txt"  # what went wrong in the child, for the assertion's message
    store = PoolIntakeStore(url, size=2)

    async def parent_record() -> None:
        await store.open()
        await store.record(inbound("parent"))

    async def child_record() -> tuple[Intake, bool]:
        try:
            intake, _ = await store.record(inbound("child"))
            return intake, store._pool is not parent_pool  # a pool of its own
        finally:
            await store.close()  # never left to a closing loop's cancellations

    # the parent's loop outlives the fork, so the parent's pool is closed by it, not abandoned
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(parent_record())
        parent_pool = store._pool
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child's coverage is not collected
            signal.alarm(20)
            code = 1
            try:
                intake, own_pool = asyncio.run(child_record())
                code = 0 if own_pool and not intake.duplicate else 2
            except BaseException:
                why.write_text(traceback.format_exc())
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
    finally:
        loop.run_until_complete(asyncio.wait_for(store.close(), 10))
        loop.close()
    assert os.waitstatus_to_exitcode(status) == 0, why.read_text() if why.exists() else "no traceback"


def test_the_publisher_batches_behind_the_answer() -> None:
    calls: list[list[int]] = []
    go = threading.Event()

    def send(ids: list[int]) -> int:
        go.wait(5)  # a broker round trip: the others queue up meanwhile
        calls.append(list(ids))
        return len(ids)

    async def scenario() -> None:
        publisher = Publisher(send, linger=0)
        publisher.submit(0)
        await asyncio.sleep(0.05)  # the first batch, [0], is with the broker
        for lead_id in range(1, 50):
            publisher.submit(lead_id)  # returns at once: the answer does not wait for the broker
        assert calls == []
        go.set()
        await publisher.flush()

    asyncio.run(scenario())
    assert calls == [[0], list(range(1, 50))]  # what gathered meanwhile went as one batch


def test_closing_sends_what_waits_or_gives_it_up_to_the_sweeper() -> None:
    sent: list[int] = []
    stuck = threading.Event()

    def send(ids: list[int]) -> int:
        if 99 in ids:
            stuck.wait(5)  # a broker that takes this batch and never answers
        sent.extend(ids)
        return len(ids)

    async def scenario() -> None:
        publisher = Publisher(send)
        for lead_id in range(10):
            publisher.submit(lead_id)
        await publisher.close(5)  # the receiver's shutdown: what was promised goes out
        assert sent == list(range(10))
        publisher.submit(99)
        await publisher.close(0.3)  # gives up in time, the thread abandoned
        assert 99 not in sent

    asyncio.run(scenario())
    stuck.set()


def test_a_broken_broker_does_not_hold_the_publisher_up() -> None:
    attempts: list[list[int]] = []

    def send(ids: list[int]) -> int:
        attempts.append(ids)
        raise ConnectionRefusedError("broker down")

    async def scenario() -> None:
        publisher = Publisher(send)
        publisher.submit(1)
        await asyncio.wait_for(publisher.flush(), timeout=5)
        publisher.submit(2)  # the publisher goes on after a failed batch
        await asyncio.wait_for(publisher.flush(), timeout=5)

    asyncio.run(scenario())
    assert attempts == [[1], [2]]


def test_a_broker_away_for_long_fills_no_memory_the_sweeper_publishes_the_rest() -> None:
    sent: list[int] = []
    release = threading.Event()

    def send(ids: list[int]) -> int:
        release.wait(5)  # a broker that does not answer
        sent.extend(ids)
        return len(ids)

    async def scenario() -> None:
        publisher = Publisher(send, most_waiting=10)
        publisher.submit(0)  # taken by the first batch, which hangs
        await asyncio.sleep(0.05)
        for lead_id in range(1, 30):
            publisher.submit(lead_id)
        release.set()
        await publisher.flush()

    asyncio.run(scenario())
    assert sent == list(range(11))  # the first, then ten waiting; 11–29 were left to the sweeper


def test_a_receiver_that_dies_between_commit_and_publish_loses_nothing(
    receiver, clean_db: str, routing: Routing, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The row is committed as ``received`` with ``enqueued_at`` = receipt; the sweeper publishes it."""
    from leadrelay.worker import queue

    base, rt, secret = receiver
    monkeypatch.setattr(queue, "enqueue", lambda ids: 0)  # the publish never happens
    body = json.dumps(SAMPLE).encode()
    response = httpx.post(f"{base}/webhooks/canonical", content=body, headers=signed(secret, body))
    assert response.status_code == 202
    lead_id = response.json()["event_id"]
    assert stored(rt) == 1
    assert queued() == []
    with rt.sessions() as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        assert (lead.state, lead.enqueued_at) == (LeadState.received, lead.received_at)

    sweeper_rt = Runtime.load(make_settings(database_url=clean_db, requeue_after_seconds=1), routing)
    sent: list[int] = []

    def collect(ids: list[int]) -> int:
        sent.extend(ids)
        return len(ids)

    try:
        sweep(sweeper_rt, enqueue=collect)
        assert sent == []  # within the grace its own message may still come
        time.sleep(1.2)
        sweep(sweeper_rt, enqueue=collect)
        assert sent == [lead_id]
    finally:
        sweeper_rt.close()


def test_the_answer_does_not_wait_for_the_broker(receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """A broker that hangs holds no webhook up: the publish is let go only after the 202 came."""
    from leadrelay.worker import queue

    base, rt, secret = receiver
    answered = threading.Event()
    published: list[int] = []

    def hanging_broker(ids: list[int]) -> int:
        answered.wait(10)  # were the answer waiting for this, neither would ever come
        published.extend(ids)
        return len(ids)

    monkeypatch.setattr(queue, "enqueue", hanging_broker)
    body = json.dumps(SAMPLE).encode()
    response = httpx.post(f"{base}/webhooks/canonical", content=body, headers=signed(secret, body), timeout=5)
    assert response.status_code == 202
    assert stored(rt) == 1
    assert published == []
    answered.set()
    deadline = time.monotonic() + 5
    while not published and time.monotonic() < deadline:
        time.sleep(0.01)
    assert published == [response.json()["event_id"]]


def test_a_receiver_shutting_down_publishes_what_it_answered(
    clean_db: str, redis_broker: str, routing: Routing, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ids still waiting for the broker when the receiver is stopped go out during its shutdown."""
    from leadrelay.worker import queue

    broker = queue.enqueue

    def slow_broker(ids: list[int]) -> int:
        time.sleep(0.3)  # the answers, and the stop, come while the first batch is still on its way
        return broker(ids)

    monkeypatch.setattr(queue, "enqueue", slow_broker)
    rt = Runtime.load(make_settings(database_url=clean_db), routing)
    secret = routing.channels["canonical"].webhook.secret.get_secret_value()  # type: ignore[union-attr]
    answered: list[int] = []
    try:
        with ThreadedServer(create_app(rt)) as server:
            for _ in range(5):
                body = json.dumps(SAMPLE).encode()
                response = httpx.post(
                    f"{server.base_url}/webhooks/canonical", content=body, headers=signed(secret, body)
                )
                assert response.status_code == 202
                answered.append(response.json()["event_id"])
        # leaving the block stops the server: its lifespan's shutdown flushes the publisher
    finally:
        rt.close()
    assert sorted(queued(5)) == sorted(answered)
