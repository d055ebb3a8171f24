"""The receiver's publish (worker.queue.announce) and the worker's fan-out, on the real Redis."""

from __future__ import annotations

import pytest
import redis
from celery.exceptions import Retry
from structlog.testing import capture_logs

from leadrelay.worker import queue, tasks
from leadrelay.worker.celery_app import CONTROL_QUEUE, FAN_OUT_TASK, LEADS_QUEUE
from tests.helpers import broker_messages


def test_one_id_goes_to_the_leads_queue_and_a_batch_as_one_message(redis_broker: str) -> None:
    client = redis.Redis.from_url(redis_broker)
    assert queue.announce([7]) == 1  # no extra hop at the rates an operator sees
    assert broker_messages(client, LEADS_QUEUE) == [(queue.PROCESS_TASK, 7)]
    assert broker_messages(client, CONTROL_QUEUE) == []

    assert queue.announce([11, 12, 13]) == 3
    assert broker_messages(client, CONTROL_QUEUE) == [(FAN_OUT_TASK, [11, 12, 13])]
    assert broker_messages(client, LEADS_QUEUE) == [(queue.PROCESS_TASK, 7)]  # nothing per lead yet
    assert queue.announce([]) == 0


def test_a_large_batch_is_cut_into_messages_of_a_bounded_size(
    redis_broker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queue, "FAN_OUT_MOST", 2)
    assert queue.announce([1, 2, 3, 4, 5]) == 5
    assert broker_messages(redis.Redis.from_url(redis_broker), CONTROL_QUEUE) == [
        (FAN_OUT_TASK, [1, 2]),
        (FAN_OUT_TASK, [3, 4]),
        (FAN_OUT_TASK, [5]),
    ]


def test_the_worker_publishes_one_message_a_lead_and_skips_what_is_not_a_lead_id(redis_broker: str) -> None:
    client = redis.Redis.from_url(redis_broker)
    queue.announce([21, 22])
    [(_, ids)] = broker_messages(client, CONTROL_QUEUE)
    with capture_logs() as logs:
        assert tasks.fan_out.run(ids) == 2  # the task's body, as the worker runs it
        assert tasks.fan_out.run([23, "24", None, -1, True, 2.5, 25]) == 2
        assert tasks.fan_out.run({"not": "a list"}) == 0  # type: ignore[arg-type]
    assert broker_messages(client, LEADS_QUEUE) == [(queue.PROCESS_TASK, n) for n in (21, 22, 23, 25)]
    assert [(e["event"], e.get("skipped")) for e in logs if e["event"] == "fan_out_skipped"] == [
        ("fan_out_skipped", 5),
        ("fan_out_skipped", 1),
    ]
    assert [e["leads"] for e in logs if e["event"] == "fanned_out"] == [2, 2]


def test_a_fan_out_message_is_read_as_input_bounded_and_each_id_once(
    redis_broker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = redis.Redis.from_url(redis_broker)
    assert queue.publish_each([31, 31, 2**63, 32]) == (2, 2)  # once each; leads.id is a BIGINT
    monkeypatch.setattr(queue, "FAN_OUT_MOST", 2)
    assert queue.publish_each([33, 34, 35]) == (2, 2)  # what a receiver would never send is not read
    assert broker_messages(client, LEADS_QUEUE) == [(queue.PROCESS_TASK, n) for n in (31, 32, 33, 34)]


def test_a_fan_out_the_broker_took_nothing_of_is_tried_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(queue, "enqueue", lambda ids: 0)  # enqueue logged the broker's failure
    with pytest.raises(Retry):
        tasks.fan_out.run([41, 42])
    assert tasks.fan_out.run(["junk"]) == 0  # nothing to publish is not a failure: no retry
