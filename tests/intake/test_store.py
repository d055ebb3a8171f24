"""The receiver's async hot path: the Postgres writer, the batching publisher, and what a crash leaves."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import psycopg
import pytest
from sqlalchemy import create_engine

from leadrelay.intake.store import InboundWriter, Publisher, conninfo
from leadrelay.models import Lead, LeadState
from leadrelay.routing import Routing
from leadrelay.runtime import Runtime
from leadrelay.worker.sweeper import sweep
from tests.conftest import make_settings
from tests.intake.test_webhooks import SAMPLE, queued, signed, stored


def _url(db_url: str) -> str:
    return conninfo(create_engine(db_url))


def test_the_writer_stores_once_per_intake_key(clean_db: str) -> None:
    async def scenario() -> tuple[object, object, object]:
        writer = InboundWriter(_url(clean_db), size=2)
        try:
            args = {"channel": "canonical", "source": "webhook", "body": b"{}", "content_type": "text/json"}
            first = await writer.record(intake_key="webhook:canonical:a", meta={"delivery_id": "a"}, **args)
            again = await writer.record(intake_key="webhook:canonical:a", meta={"delivery_id": "a"}, **args)
            other = await writer.record(intake_key="webhook:canonical:b", meta=None, **args)
            return first, again, other
        finally:
            await writer.close()

    (first, publish_first), (again, publish_again), (other, _) = asyncio.run(scenario())  # type: ignore[misc]
    assert (first.duplicate, publish_first) == (False, True)  # type: ignore[attr-defined]
    assert (again.duplicate, publish_again) == (True, False)  # type: ignore[attr-defined]
    assert again.lead_id == first.lead_id  # type: ignore[attr-defined]
    assert other.lead_id != first.lead_id  # type: ignore[attr-defined]


def test_the_writer_replaces_a_connection_that_died_while_idle(clean_db: str) -> None:
    """What pool_pre_ping did for the ORM: a restarted Postgres costs no failed webhook."""
    url = _url(clean_db)

    async def scenario() -> tuple[int, int]:
        writer = InboundWriter(url, size=3)
        try:
            args = {"channel": "canonical", "source": "webhook", "body": b"{}", "content_type": None}
            first = await asyncio.gather(*(writer.record(intake_key=f"k{i}", **args) for i in range(3)))
            pids = [conn.info.backend_pid for conn in writer._idle]
            assert len(pids) == 3
            with psycopg.connect(url, autocommit=True) as admin:  # all of them, as a restart does
                admin.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [pids])
            await asyncio.sleep(0.2)
            second, publish = await writer.record(intake_key="k9", **args)
            assert publish
            assert [conn.info.backend_pid for conn in writer._idle] not in ([], pids)
            assert not set(conn.info.backend_pid for conn in writer._idle) & set(pids)
            return first[0][0].lead_id, second.lead_id
        finally:
            await writer.close()

    first, second = asyncio.run(scenario())
    assert second != first


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
