"""Plain HMAC with a signed timestamp: a captured request cannot be replayed later. Real HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from leadrelay.api.app import create_app
from leadrelay.intake.signatures import SignatureError, sign_hmac, verify_hmac
from leadrelay.runtime import Runtime
from tests.conftest import OPEN_BUDGET, ThreadedServer, make_settings, routing_with

SECRET = "partner-hmac-secret-0123456789"
BODY = json.dumps(
    {"external_id": "p-77", "contact": {"full_name": "Ana Ruiz", "email": "ana.ruiz@example.com"}}
).encode()


@pytest.fixture
def hmac_receiver(clean_db: str, redis_broker: str) -> Iterator[str]:
    plain = {"scheme": "hmac-sha256", "secret": SECRET, "id_header": "X-Delivery"}
    channels = {
        "stamped": {
            "lead_source": 11,
            "adapter": "canonical",
            "webhook": {**plain, "timestamp_header": "X-Timestamp"},
        },
        "bodyonly": {"lead_source": 11, "adapter": "canonical", "webhook": plain},
    }
    routing = routing_with(accounts=OPEN_BUDGET, channels=channels)
    rt = Runtime.load(make_settings(database_url=clean_db, webhook_tolerance_seconds=300), routing)
    with ThreadedServer(create_app(rt)) as server:
        yield server.base_url
    rt.close()


def stamped(body: bytes, ts: int, **extra: str) -> dict[str, str]:
    return {"x-timestamp": str(ts), "x-signature": sign_hmac(SECRET, body, ts), **extra}


def test_a_fresh_signed_timestamp_is_accepted(hmac_receiver: str) -> None:
    response = httpx.post(
        f"{hmac_receiver}/webhooks/stamped", content=BODY, headers=stamped(BODY, int(time.time()))
    )
    assert response.status_code == 202, response.text


def test_a_captured_request_replayed_after_the_window_is_refused(hmac_receiver: str) -> None:
    captured = stamped(BODY, int(time.time()) - 301, **{"x-delivery": "d-1"})
    response = httpx.post(f"{hmac_receiver}/webhooks/stamped", content=BODY, headers=captured)
    assert response.status_code == 401
    assert "X-Timestamp is outside the allowed window" in response.json()["message"]


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"x-signature": sign_hmac(SECRET, BODY)}, "missing X-Timestamp header"),  # body-only signature
        ({"x-timestamp": "soon", "x-signature": sign_hmac(SECRET, BODY)}, "X-Timestamp is not an integer"),
        ({"x-timestamp": "-5", "x-signature": sign_hmac(SECRET, BODY, -5)}, "X-Timestamp is not an integer"),
        ({"x-timestamp": "9" * 400, "x-signature": sign_hmac(SECRET, BODY)}, "X-Timestamp is not an integer"),
    ],
)
def test_a_missing_or_unreadable_timestamp_is_refused(
    hmac_receiver: str, headers: dict[str, str], reason: str
) -> None:
    response = httpx.post(f"{hmac_receiver}/webhooks/stamped", content=BODY, headers=headers)
    assert response.status_code == 401
    assert reason in response.json()["message"]


def test_a_timestamp_changed_by_an_attacker_breaks_the_signature(hmac_receiver: str) -> None:
    old = int(time.time()) - 3600
    headers = {**stamped(BODY, old), "x-timestamp": str(int(time.time()))}  # re-dated, signature kept
    response = httpx.post(f"{hmac_receiver}/webhooks/stamped", content=BODY, headers=headers)
    assert response.status_code == 401
    assert response.json()["message"] == "no signature matches"


def test_the_body_only_form_still_works_and_a_replay_of_its_id_is_a_duplicate(hmac_receiver: str) -> None:
    headers = {"x-signature": sign_hmac(SECRET, BODY), "x-delivery": "d-9"}
    first = httpx.post(f"{hmac_receiver}/webhooks/bodyonly", content=BODY, headers=headers)
    again = httpx.post(f"{hmac_receiver}/webhooks/bodyonly", content=BODY, headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json() == {"event_id": first.json()["event_id"], "duplicate": True}


def test_verify_hmac_with_a_timestamp_signs_timestamp_dot_body() -> None:
    now = 1_800_000_000
    headers = {"x-sig": sign_hmac(b"k", b"{}", now), "x-ts": str(now)}
    verified = verify_hmac(
        headers, b"{}", [b"k"], signature_header="X-Sig", timestamp_header="X-Ts", now=now + 10
    )
    assert verified.timestamp == now
    with pytest.raises(SignatureError, match="outside the allowed window"):
        verify_hmac(headers, b"{}", [b"k"], signature_header="X-Sig", timestamp_header="X-Ts", now=now + 301)
    with pytest.raises(SignatureError, match="no signature matches"):  # the body-only HMAC is not enough
        verify_hmac(
            {**headers, "x-sig": sign_hmac(b"k", b"{}")},
            b"{}",
            [b"k"],
            signature_header="X-Sig",
            timestamp_header="X-Ts",
            now=now,
        )
