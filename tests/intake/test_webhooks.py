"""The webhook door, over real HTTP, on the real Postgres and Redis."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
import redis
from sqlalchemy import func, select

from leadrelay.intake.signatures import sign_standard
from leadrelay.models import Lead, LeadState
from leadrelay.routing import Routing
from leadrelay.runtime import Runtime
from leadrelay.worker.celery_app import CONTROL_QUEUE, FAN_OUT_TASK, LEADS_QUEUE
from leadrelay.worker.queue import PROCESS_TASK
from tests.conftest import REDIS_URL
from tests.helpers import broker_messages

SAMPLE = {
    "external_id": "zap-000193",
    "contact": {"full_name": "Mei Chen", "email": "mei.chen@example.com"},
    "listing": {"id": "foundry"},
}


def signed(
    secret: str, body: bytes, *, delivery_id: str | None = None, ts: int | None = None
) -> dict[str, str]:
    delivery_id = delivery_id or f"msg_{uuid.uuid4().hex}"
    ts = int(time.time()) if ts is None else ts
    return {
        "content-type": "application/json",
        "webhook-id": delivery_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign_standard(secret, delivery_id, ts, body),
    }


def stored(rt: Runtime) -> int:
    with rt.sessions() as session:
        return int(session.execute(select(func.count()).select_from(Lead)).scalar_one())


def queued(expected: int = 0, *, timeout: float = 5.0) -> list[int]:
    """Lead ids the receiver put on the broker (kombu message → Celery body → args).

    One id is a message on the leads queue; a batch is a ``leadrelay.fan_out``
    message on the control queue, whose ids a worker would publish one by one: both
    count. The receiver publishes behind its answer: this waits (up to ``timeout``)
    for ``expected`` ids, then a moment more, so that one too many shows too.
    """
    client = redis.Redis.from_url(REDIS_URL)

    def ids() -> list[int]:
        found = []
        for queue in (LEADS_QUEUE, CONTROL_QUEUE):
            for task, first in broker_messages(client, queue):
                found += first if task == FAN_OUT_TASK else [first] if task == PROCESS_TASK else []
        return found

    deadline = time.monotonic() + timeout
    while len(ids()) < expected and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.1)
    return ids()


def test_a_signed_webhook_is_answered_202_once_committed_then_enqueued(receiver) -> None:
    base, rt, secret = receiver
    body = json.dumps(SAMPLE).encode()
    response = httpx.post(f"{base}/webhooks/canonical", content=body, headers=signed(secret, body))
    assert response.status_code == 202
    answer = response.json()
    assert answer["duplicate"] is False
    with rt.sessions() as session:
        lead = session.get(Lead, answer["event_id"])
        assert lead is not None
        assert lead.raw_body == body
        assert lead.state == LeadState.received
        assert lead.channel == "canonical"
    assert queued(1) == [answer["event_id"]]


def test_the_same_delivery_id_again_is_recognised_at_the_door(receiver) -> None:
    base, rt, secret = receiver
    body = json.dumps(SAMPLE).encode()
    headers = signed(secret, body, delivery_id="msg_fixed")
    first = httpx.post(f"{base}/webhooks/canonical", content=body, headers=headers).json()
    again = httpx.post(f"{base}/webhooks/canonical", content=body, headers=headers).json()
    assert again == {"event_id": first["event_id"], "duplicate": True}
    assert stored(rt) == 1
    assert queued(1) == [first["event_id"]]


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda h: {k: v for k, v in h.items() if k != "webhook-signature"}, id="missing"),
        pytest.param(
            lambda h: h | {"webhook-signature": "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}, id="bad"
        ),
        pytest.param(lambda h: h | {"webhook-signature": "v1,not-base64!!"}, id="malformed"),
    ],
)
def test_bad_or_missing_signatures_get_401_and_store_nothing(receiver, tamper) -> None:
    base, rt, secret = receiver
    body = json.dumps(SAMPLE).encode()
    response = httpx.post(f"{base}/webhooks/canonical", content=body, headers=tamper(signed(secret, body)))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_signature"
    assert stored(rt) == 0
    assert queued() == []


def test_a_stale_timestamp_gets_401_and_stores_nothing(receiver) -> None:
    base, rt, secret = receiver
    body = json.dumps(SAMPLE).encode()
    old = int(time.time()) - 3600
    response = httpx.post(f"{base}/webhooks/canonical", content=body, headers=signed(secret, body, ts=old))
    assert response.status_code == 401
    assert "window" in response.json()["message"]
    assert stored(rt) == 0


def test_a_content_type_longer_than_the_ledger_keeps_is_cut_not_fatal(receiver) -> None:
    base, rt, secret = receiver
    body = json.dumps(SAMPLE).encode()
    long_type = "application/json; profile=" + "x" * 300
    headers = signed(secret, body) | {"content-type": long_type}
    response = httpx.post(f"{base}/webhooks/canonical", content=body, headers=headers)
    assert response.status_code == 202
    with rt.sessions() as session:
        lead = session.get(Lead, response.json()["event_id"])
        assert lead is not None
        assert (lead.raw_body, lead.content_type) == (body, long_type[:200])


def test_another_channels_secret_does_not_open_this_door(receiver, routing: Routing) -> None:
    base, rt, _ = receiver
    other = routing.channels["hubblehq"].webhook.secret.get_secret_value()  # type: ignore[union-attr]
    body = json.dumps(SAMPLE).encode()
    assert (
        httpx.post(f"{base}/webhooks/canonical", content=body, headers=signed(other, body)).status_code == 401
    )
    assert stored(rt) == 0


def test_malformed_json_gets_400_and_stores_nothing(receiver) -> None:
    base, rt, secret = receiver
    body = b'{"contact": {"email": '
    response = httpx.post(f"{base}/webhooks/canonical", content=body, headers=signed(secret, body))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_json"
    assert stored(rt) == 0


def test_a_body_over_256_kib_gets_413_and_stores_nothing(receiver) -> None:
    base, rt, secret = receiver
    body = json.dumps({**SAMPLE, "message": "x" * (256 * 1024)}).encode()
    response = httpx.post(f"{base}/webhooks/canonical", content=body, headers=signed(secret, body))
    assert response.status_code == 413
    assert stored(rt) == 0


def test_a_chunked_body_over_the_limit_gets_413_too(receiver) -> None:
    base, rt, secret = receiver
    body = b" " * (256 * 1024 + 10)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    response = httpx.post(f"{base}/webhooks/canonical", content=chunks(), headers=signed(secret, body))
    assert response.status_code == 413
    assert stored(rt) == 0


def test_an_unknown_channel_gets_404(receiver) -> None:
    base, rt, secret = receiver
    body = json.dumps(SAMPLE).encode()
    response = httpx.post(f"{base}/webhooks/nosuchportal", content=body, headers=signed(secret, body))
    assert response.status_code == 404
    assert response.json()["error"] == "unknown_channel"
    assert stored(rt) == 0


def test_the_broker_being_down_does_not_lose_the_lead(receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """202 still means durable: the row is there for the sweeper to enqueue."""
    from leadrelay.worker.celery_app import app as celery_app

    base, rt, secret = receiver

    def broken(*args: object, **kwargs: object) -> None:
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(celery_app, "send_task", broken)
    body = json.dumps(SAMPLE).encode()
    response = httpx.post(f"{base}/webhooks/canonical", content=body, headers=signed(secret, body))
    assert response.status_code == 202
    assert stored(rt) == 1
    assert queued() == []


def test_a_timestamp_of_400_digits_is_refused_like_any_stale_one(receiver) -> None:
    base, rt, secret = receiver
    body = json.dumps(SAMPLE).encode()
    huge = int("9" * 400)
    headers = {**signed(secret, body, ts=huge), "webhook-timestamp": str(huge)}
    response = httpx.post(f"{base}/webhooks/canonical", content=body, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_signature"
    assert stored(rt) == 0


def test_a_signed_body_nested_too_deeply_to_read_gets_400(receiver) -> None:
    base, rt, secret = receiver
    body = b"[" * 100_000 + b"]" * 100_000  # within the size limit, deeper than any JSON reader goes
    response = httpx.post(f"{base}/webhooks/canonical", content=body, headers=signed(secret, body))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_json"
    assert stored(rt) == 0
