"""The receiver's async hot path: the Postgres pool, the batching publisher, and what a crash leaves."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import traceback
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy import create_engine

from leadrelay.intake.store import APPLICATION_NAME, Inbound, Intake, PoolIntakeStore, Publisher, conninfo
from leadrelay.models import Lead, LeadState
from leadrelay.routing import Routing
from leadrelay.runtime import Runtime
from leadrelay.worker.sweeper import sweep
from tests.conftest import make_settings
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


def test_the_publisher_batches_and_answers_each_caller_after_its_batch() -> None:
    calls: list[list[int]] = []

    def send(ids: list[int]) -> int:
        time.sleep(0.02)  # a broker round trip: the others queue up meanwhile
        calls.append(list(ids))
        return len(ids)

    async def scenario() -> None:
        publisher = Publisher(send)

        async def one(lead_id: int) -> None:
            await publisher.publish(lead_id)
            assert any(lead_id in batch for batch in calls)  # sent before the caller goes on

        await asyncio.gather(*(one(i) for i in range(50)))

    asyncio.run(scenario())
    assert sorted(i for batch in calls for i in batch) == list(range(50))
    assert len(calls) < 50


def test_a_broken_broker_does_not_hold_the_publisher_up() -> None:
    def send(ids: list[int]) -> int:
        raise ConnectionRefusedError("broker down")

    async def scenario() -> None:
        await asyncio.wait_for(Publisher(send).publish(1), timeout=5)

    asyncio.run(scenario())


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
