"""Several leads in one message (worker.queue.messages, the ``leadrelay.process_leads`` task).

The main path runs real leads through the task's body against the real Postgres ledger,
the sandbox over HTTP and the real Redis broker; the ledger's outage, a lead's error and
a slow message are shaped by standing in for the pipeline (rare edges), the broker real.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from structlog.testing import capture_logs

from leadrelay.db import make_session_factory, transaction
from leadrelay.runtime import Runtime
from leadrelay.worker import queue, tasks
from leadrelay.worker.celery_app import LEADS_QUEUE
from tests.helpers import Checkouts, broker_messages, canonical, ingest

ONE = queue.PROCESS_TASK
MANY = queue.PROCESS_MANY_TASK


def test_a_publish_is_spread_over_messages_before_leads_share_one() -> None:
    ids = list(range(1, 100))
    assert queue.messages([], spread=32, most=8) == []
    assert queue.messages(ids[:32], spread=32, most=8) == [[n] for n in ids[:32]]
    assert [len(m) for m in queue.messages(ids[:33], spread=32, most=8)] == [2] + [1] * 31
    assert [len(m) for m in queue.messages(ids, spread=32, most=8)] == [4] * 3 + [3] * 29
    assert [len(m) for m in queue.messages(list(range(1000)), spread=32, most=8)] == [8] * 125
    assert [len(m) for m in queue.messages(list(range(1500)), spread=32, most=8)] == [8] * 184 + [7] * 4
    assert queue.messages(ids, spread=32, most=1) == [[n] for n in ids]
    assert [n for m in queue.messages(ids, spread=7, most=5) for n in m] == ids  # each lead once, in order


def test_enqueue_puts_a_large_publish_in_messages_of_several_leads(redis_broker: str) -> None:
    client = redis.Redis.from_url(redis_broker)
    assert queue.enqueue([1, 2]) == 2
    assert queue.enqueue([]) == 0
    assert broker_messages(client, LEADS_QUEUE) == [(ONE, 1), (ONE, 2)]
    client.delete(LEADS_QUEUE)
    assert queue.enqueue(range(101, 200)) == 99  # the defaults: at least 32 messages, at most 8 a message
    found = broker_messages(client, LEADS_QUEUE)
    assert {task for task, _ in found} == {MANY}
    assert [len(ids) for _, ids in found] == [4] * 3 + [3] * 29
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


def test_a_message_of_several_leads_checks_out_two_connections_for_all_of_them(
    in_worker: Runtime, sandbox, redis_broker: str
) -> None:
    """Its leads and its dispatch share one pair of kept connections (db.kept_connections), not one a lead."""
    people = [{"full_name": f"Kept Person {n}", "email": f"kept.{n}@example.org"} for n in range(3)]
    ids = [ingest(in_worker, canonical(external_id=f"kept-{n}", contact=p)) for n, p in enumerate(people)]
    checkouts = Checkouts(in_worker.engine)
    assert tasks.process_leads.run(list(ids)) == ["delivered"] * 3
    assert checkouts.count == 2
    assert in_worker.engine.pool.checkedout() == 0  # type: ignore[attr-defined]  # both back in the pool
    assert len(sandbox.opportunities()) == 3


def test_a_unit_that_fails_mid_message_leaves_no_connection_out(
    in_worker: Runtime, sandbox, redis_broker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lead whose unit fails on the kept connection: it is given back, the rest handed on, none left out."""
    people = [{"full_name": f"Broken Person {n}", "email": f"broken.{n}@example.org"} for n in range(3)]
    ids = [ingest(in_worker, canonical(external_id=f"broken-{n}", contact=p)) for n, p in enumerate(people)]
    real_process = tasks.pipeline.process

    def process(rt: Runtime, lead_id: int, **kwargs: Any) -> str:
        outcome = real_process(rt, lead_id, **kwargs)
        if lead_id == ids[1]:  # delivered, then a unit of its own fails on the kept connection
            with transaction(rt.sessions) as session:
                session.execute(text("SELECT 1 / 0"))
        return outcome

    monkeypatch.setattr(tasks.pipeline, "process", process)
    checkouts = Checkouts(in_worker.engine)
    with pytest.raises(DataError):
        tasks.process_leads.run(list(ids))
    assert checkouts.count == 2  # the message's pair: the failed unit's given back, nothing more taken
    assert in_worker.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    assert waiting(redis_broker) == [(ONE, ids[2])]  # the lead not started goes on in a new message
    assert len(sandbox.opportunities()) == 2


def test_a_message_asks_for_waiting_leads_once_an_account_after_its_last_lead(
    in_worker: Runtime, sandbox, redis_broker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A delivery that freed a slot asks whether a lead waits; a message's deliveries ask once, at its end."""
    people = [{"full_name": f"Freed Person {n}", "email": f"freed.{n}@example.org"} for n in range(3)]
    ids = [ingest(in_worker, canonical(external_id=f"freed-{n}", contact=p)) for n, p in enumerate(people)]
    seen: list[object] = []
    real_process, real_dispatch = tasks.pipeline.process, tasks.pipeline.dispatch_waiting

    def process(rt: Runtime, lead_id: int, **kwargs: Any) -> str:
        outcome = real_process(rt, lead_id, **kwargs)
        seen.append(lead_id)
        return outcome

    def dispatch_waiting(rt: Runtime, account: str, **kwargs: Any) -> int:
        seen.append(("asked", account))
        return real_dispatch(rt, account, **kwargs)

    monkeypatch.setattr(tasks.pipeline, "process", process)
    monkeypatch.setattr(tasks.pipeline, "dispatch_waiting", dispatch_waiting)
    assert tasks.process_leads.run(list(ids)) == ["delivered"] * 3
    assert seen == [*ids, ("asked", "main")]


def test_a_dispatch_that_fails_after_the_message_is_left_to_the_sweeper(
    in_worker: Runtime, sandbox, redis_broker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lead_id = ingest(in_worker, canonical(external_id="freed-down"))

    def down(*_: object, **__: object) -> int:
        raise _ledger_down()

    monkeypatch.setattr(tasks.pipeline, "dispatch_waiting", down)
    with capture_logs() as logs:
        assert tasks.process_leads.run([lead_id]) == ["delivered"]  # what the message did stands
    assert [e["error"] for e in logs if e["event"] == "dispatch_failed"] == ["OperationalError"]
    with capture_logs() as logs:  # the ledger away: the other accounts do not wait it out in turn
        tasks.pipeline.dispatch_freed(in_worker, {"main", "other"}, enqueue=len)
    assert [e["error"] for e in logs if e["event"] == "dispatch_failed"] == ["OperationalError"]


def standing_in(
    monkeypatch: pytest.MonkeyPatch,
    fails: Callable[[int, int], Exception | None],
    *,
    notifications: bool = False,
) -> list[int]:
    """The pipeline stood in for: each call recorded; ``fails(lead_id, nth call for it)`` may raise."""
    calls: list[int] = []

    def process(rt: object, lead_id: int, **_: object) -> str:
        calls.append(lead_id)
        if (exc := fails(lead_id, calls.count(lead_id))) is not None:
            raise exc
        return "delivered"

    routing = SimpleNamespace(notifications=SimpleNamespace(enabled=notifications))
    sessions = make_session_factory(create_engine("sqlite://"))  # not Postgres: no connection is kept
    monkeypatch.setattr(tasks.pipeline, "process", process)
    monkeypatch.setattr(tasks, "current_runtime", lambda: SimpleNamespace(routing=routing, sessions=sessions))
    return calls


def _ledger_down() -> Exception:
    return OperationalError("SELECT 1", {}, Exception("connection refused"))


def waiting(redis_broker: str) -> list[tuple[str, object]]:
    return broker_messages(redis.Redis.from_url(redis_broker), LEADS_QUEUE)


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


def test_a_single_lead_message_tries_again_with_its_lead(
    monkeypatch: pytest.MonkeyPatch, redis_broker: str
) -> None:
    calls = standing_in(monkeypatch, lambda lead_id, nth: _ledger_down() if nth == 1 else None)
    result = tasks.process_lead.apply(args=[61])
    assert result.successful() and result.get() == "delivered"
    assert calls == [61, 61]


def test_a_ledger_that_stays_down_hands_the_rest_on_after_the_retries(
    monkeypatch: pytest.MonkeyPatch, redis_broker: str
) -> None:
    calls = standing_in(monkeypatch, lambda lead_id, nth: _ledger_down() if lead_id == 22 else None)
    result = tasks.process_leads.apply(args=[[21, 22, 23]])
    assert result.failed()
    assert calls == [21] + [22] * 6  # the first run and five retries, then the message is given up
    assert waiting(redis_broker) == [(ONE, 23)]  # the lead after it goes on; 22 is the sweeper's


def test_an_error_in_one_lead_hands_the_rest_on_in_a_new_message(
    monkeypatch: pytest.MonkeyPatch, redis_broker: str
) -> None:
    calls = standing_in(monkeypatch, lambda lead_id, nth: RuntimeError("a bug") if lead_id == 32 else None)
    with pytest.raises(RuntimeError):
        tasks.process_leads.run([31, 32, 33, 34])
    assert calls == [31, 32]
    assert waiting(redis_broker) == [(ONE, 33), (ONE, 34)]


def test_a_database_error_that_is_no_outage_is_not_tried_again(
    monkeypatch: pytest.MonkeyPatch, redis_broker: str
) -> None:
    """A lead whose statement fails (an integrity or data error) takes no other lead through retries."""
    bad = IntegrityError("INSERT", {}, Exception("duplicate key"))
    calls = standing_in(monkeypatch, lambda lead_id, nth: bad if lead_id == 35 else None)
    result = tasks.process_leads.apply(args=[[35, 36]])
    assert result.failed() and isinstance(result.result, IntegrityError)
    assert calls == [35]
    assert waiting(redis_broker) == [(ONE, 36)]


def test_staff_are_notified_of_a_delivery_however_the_message_ends(
    monkeypatch: pytest.MonkeyPatch, redis_broker: str
) -> None:
    kicked: list[bool] = []
    monkeypatch.setattr(tasks, "_kick_notifications", lambda: kicked.append(True))
    standing_in(
        monkeypatch, lambda lead_id, nth: RuntimeError("a bug") if lead_id == 72 else None, notifications=True
    )
    with pytest.raises(RuntimeError):
        tasks.process_leads.run([71, 72])
    assert kicked == [True]  # 71 was delivered


@pytest.fixture
def slow(monkeypatch: pytest.MonkeyPatch) -> None:
    """The task's clock: each reading 1.5 s after the one before (the hand-on comes after 2 s)."""
    ticks = itertools.count(0.0, 1.5)
    monkeypatch.setattr(tasks, "_clock", lambda: next(ticks))


def test_a_slow_message_hands_the_leads_not_started_on_in_a_new_one(
    monkeypatch: pytest.MonkeyPatch, redis_broker: str, slow: None
) -> None:
    calls = standing_in(monkeypatch, lambda lead_id, nth: None)
    with capture_logs() as logs:
        assert tasks.process_leads.run([41, 42, 43, 44]) == ["delivered", "delivered"]
    assert calls == [41, 42]  # started at 0 and 1.5 s; at 3 s the rest go on
    assert waiting(redis_broker) == [(ONE, 43), (ONE, 44)]
    assert [(e["leads"], e["sent"]) for e in logs if e["event"] == "leads_handed_on"] == [(2, 2)]


def test_leads_the_broker_will_not_take_back_go_on_in_the_message(
    monkeypatch: pytest.MonkeyPatch, slow: None
) -> None:
    calls = standing_in(monkeypatch, lambda lead_id, nth: None)
    monkeypatch.setattr(tasks, "enqueue", lambda ids: 0)  # enqueue logged the broker's failure
    with capture_logs() as logs:
        assert tasks.process_leads.run([45, 46, 47, 48]) == ["delivered"] * 4
    assert calls == [45, 46, 47, 48]
    assert [(e["leads"], e["sent"]) for e in logs if e["event"] == "leads_handed_on"] == [(2, 0)]


def test_a_message_is_read_as_input(monkeypatch: pytest.MonkeyPatch, redis_broker: str) -> None:
    calls = standing_in(monkeypatch, lambda lead_id, nth: None)
    with capture_logs() as logs:
        assert tasks.process_leads.run([51, "52", None, 51, -1, True, 2**63, 53]) == ["delivered"] * 2
        assert tasks.process_leads.run({"not": "a list"}) == []  # type: ignore[arg-type]
    assert calls == [51, 53]
    assert [e["skipped"] for e in logs if e["event"] == "process_skipped"] == [6, 1]
