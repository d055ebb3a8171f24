"""Several leads in one message (worker.queue.messages, the ``leadrelay.process_leads`` task).

The main path runs real leads through the task's body against the real Postgres ledger,
the sandbox over HTTP and the real Redis broker; the ledger's outage, a lead's error and
a slow message are shaped by standing in for the pipeline (rare edges), the broker real.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pytest
import redis
from sqlalchemy.exc import OperationalError
from structlog.testing import capture_logs

from leadrelay.runtime import Runtime
from leadrelay.worker import queue, tasks
from leadrelay.worker.celery_app import LEADS_QUEUE
from tests.helpers import broker_messages, canonical, ingest

ONE = queue.PROCESS_TASK
MANY = queue.PROCESS_MANY_TASK


def test_a_publish_is_spread_over_messages_before_leads_share_one() -> None:
    ids = list(range(1, 100))
    assert queue.messages([], spread=32, most=8) == []
    assert queue.messages(ids[:32], spread=32, most=8) == [[n] for n in ids[:32]]
    assert [len(m) for m in queue.messages(ids[:33], spread=32, most=8)] == [2] * 16 + [1]
    assert [len(m) for m in queue.messages(ids, spread=32, most=8)] == [4] * 24 + [3]
    assert [len(m) for m in queue.messages(list(range(1000)), spread=32, most=8)] == [8] * 125
    assert queue.messages(ids, spread=32, most=1) == [[n] for n in ids]
    assert [n for m in queue.messages(ids, spread=7, most=5) for n in m] == ids  # each lead once, in order


def test_enqueue_puts_a_large_publish_in_messages_of_several_leads(redis_broker: str) -> None:
    client = redis.Redis.from_url(redis_broker)
    assert queue.enqueue([1, 2]) == 2
    assert broker_messages(client, LEADS_QUEUE) == [(ONE, 1), (ONE, 2)]
    client.delete(LEADS_QUEUE)
    assert queue.enqueue(range(101, 200)) == 99  # the defaults: spread 32, at most 8 a message
    found = broker_messages(client, LEADS_QUEUE)
    assert {task for task, _ in found} == {MANY}
    assert [len(ids) for _, ids in found] == [4] * 24 + [3]
    assert [n for _, ids in found for n in ids] == list(range(101, 200))


@pytest.fixture
def in_worker(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    """The tasks' runtime is the test's (the real ledger, the sandbox)."""
    monkeypatch.setattr(tasks, "current_runtime", lambda: runtime)
    return runtime


def test_a_message_of_several_leads_delivers_each_once_and_again_nothing(
    in_worker: Runtime, sandbox, redis_broker: str
) -> None:
    people = [{"full_name": f"Batch Person {n}", "email": f"batch.{n}@example.org"} for n in range(3)]
    ids = [ingest(in_worker, canonical(external_id=f"batch-{n}", contact=p)) for n, p in enumerate(people)]
    with capture_logs() as logs:
        assert tasks.process_leads.run(list(ids)) == ["delivered"] * 3
    assert [e["outcome"] for e in logs if e["event"] == "lead_processed"] == ["delivered"] * 3
    assert len(sandbox.opportunities()) == 3
    calls = len(sandbox.requests())
    # the message redelivered (its worker died after the last lead): each lead says where it is
    assert tasks.process_leads.run(list(ids)) == ["delivered"] * 3
    assert len(sandbox.requests()) == calls  # and nothing is sent to Nexudus again
    assert len(sandbox.opportunities()) == 3


def standing_in(monkeypatch: pytest.MonkeyPatch, fails: Callable[[int, int], Exception | None]) -> list[int]:
    """The pipeline stood in for: each call recorded; ``fails(lead_id, nth call for it)`` may raise."""
    calls: list[int] = []

    def process(rt: object, lead_id: int, **_: object) -> str:
        calls.append(lead_id)
        if (exc := fails(lead_id, calls.count(lead_id))) is not None:
            raise exc
        return "delivered"

    monkeypatch.setattr(tasks.pipeline, "process", process)
    monkeypatch.setattr(tasks, "current_runtime", lambda: type("Rt", (), {"routing": _NoNotifications})())
    return calls


class _NoNotifications:
    class notifications:  # noqa: N801 - the routing's attribute
        enabled = False


def _ledger_down() -> Exception:
    return OperationalError("SELECT 1", {}, Exception("connection refused"))


def test_the_ledger_unreachable_mid_message_tries_again_from_the_lead_not_done(
    monkeypatch: pytest.MonkeyPatch, redis_broker: str
) -> None:
    calls = standing_in(
        monkeypatch, lambda lead_id, nth: _ledger_down() if (lead_id, nth) == (12, 1) else None
    )
    result = tasks.process_leads.apply(args=[[11, 12, 13]])  # eager: the retry runs at once
    assert result.successful()
    assert calls == [11, 12, 12, 13]  # 11 is not done twice
    assert result.get() == ["delivered", "delivered"]  # the retry's own run: 12 and 13


def test_a_ledger_that_stays_down_leaves_the_rest_to_the_sweeper(
    monkeypatch: pytest.MonkeyPatch, redis_broker: str
) -> None:
    calls = standing_in(monkeypatch, lambda lead_id, nth: _ledger_down() if lead_id == 22 else None)
    result = tasks.process_leads.apply(args=[[21, 22, 23]])
    assert result.failed()
    assert calls == [21] + [22] * 6  # the first run and five retries, then the message is given up
    assert broker_messages(redis.Redis.from_url(redis_broker), LEADS_QUEUE) == []  # the sweeper's: 22, 23


def test_an_error_in_one_lead_hands_the_rest_on_in_a_new_message(
    monkeypatch: pytest.MonkeyPatch, redis_broker: str
) -> None:
    calls = standing_in(monkeypatch, lambda lead_id, nth: RuntimeError("a bug") if lead_id == 32 else None)
    with pytest.raises(RuntimeError):
        tasks.process_leads.run([31, 32, 33, 34])
    assert calls == [31, 32]
    assert broker_messages(redis.Redis.from_url(redis_broker), LEADS_QUEUE) == [(ONE, 33), (ONE, 34)]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[itertools.count[float]]:
    """The task's clock: each reading 0.6 s after the one before; the hard limit 4 s (hand on after 1 s)."""
    ticks = itertools.count(0.0, 0.6)
    monkeypatch.setattr(tasks.time, "monotonic", lambda: next(ticks))
    monkeypatch.setitem(tasks.app.conf, "task_time_limit", 4)
    yield ticks


def test_a_slow_message_hands_the_leads_not_started_on_in_a_new_one(
    monkeypatch: pytest.MonkeyPatch, redis_broker: str, clock: itertools.count[float]
) -> None:
    calls = standing_in(monkeypatch, lambda lead_id, nth: None)
    with capture_logs() as logs:
        assert tasks.process_leads.run([41, 42, 43, 44]) == ["delivered", "delivered"]
    assert calls == [41, 42]  # started at 0 and 0.6 s; at 1.2 s the rest go on
    assert broker_messages(redis.Redis.from_url(redis_broker), LEADS_QUEUE) == [(ONE, 43), (ONE, 44)]
    assert [(e["leads"], e["sent"]) for e in logs if e["event"] == "leads_handed_on"] == [(2, 2)]


def test_a_message_is_read_as_input(monkeypatch: pytest.MonkeyPatch, redis_broker: str) -> None:
    calls = standing_in(monkeypatch, lambda lead_id, nth: None)
    with capture_logs() as logs:
        assert tasks.process_leads.run([51, "52", None, 51, -1, True, 2**63, 53]) == ["delivered"] * 2
        assert tasks.process_leads.run({"not": "a list"}) == []  # type: ignore[arg-type]
    assert calls == [51, 53]
    assert [e["skipped"] for e in logs if e["event"] == "process_skipped"] == [6, 1]
