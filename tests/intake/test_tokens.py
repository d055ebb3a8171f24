"""No-code senders (Zapier, Make, website forms): the token scheme, over real HTTP."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from leadrelay import logs
from leadrelay.api.app import create_app
from leadrelay.intake.signatures import SignatureError, verify_token
from leadrelay.logs import mask_personal
from leadrelay.models import Lead
from leadrelay.routing import RoutingError
from leadrelay.runtime import Runtime
from tests.conftest import OPEN_BUDGET, ThreadedServer, make_settings, routing_with
from tests.helpers import logging_restored

TOKEN = "zap_" + "k3Y9" * 10  # 44 URL-safe characters
OLD_TOKEN = "old_" + "Q7wE" * 10
FORM_TOKEN = "form_" + "p0Lm" * 10
BODY = json.dumps(
    {"external_id": "zap-1", "contact": {"full_name": "Mei Chen", "email": "mei.chen@example.com"}}
).encode()
JSON = {"content-type": "application/json"}


def token_routing() -> dict[str, object]:
    return {
        "zapier": {
            "lead_source": 11,
            "adapter": "canonical",
            "webhook": {"scheme": "token", "token": f"{TOKEN} {OLD_TOKEN}", "id_header": "X-Zap-Id"},
        },
        "form": {
            "lead_source": 11,
            "adapter": "canonical",
            "webhook": {"scheme": "token", "token_in": "path", "token": FORM_TOKEN},
        },
    }


@pytest.fixture
def token_receiver(clean_db: str, redis_broker: str) -> Iterator[tuple[str, Runtime]]:
    routing = routing_with(accounts=OPEN_BUDGET, channels=token_routing())
    rt = Runtime.load(make_settings(database_url=clean_db), routing)
    with ThreadedServer(create_app(rt)) as server:
        yield server.base_url, rt
    rt.close()


@pytest.fixture
def own_logs() -> Iterator[None]:
    """The test configures logs onto its captured stderr: as they were again afterwards."""
    with logging_restored():
        yield


def leads(rt: Runtime) -> int:
    with rt.sessions() as session:
        return int(session.execute(select(func.count()).select_from(Lead)).scalar_one())


def test_a_bearer_token_is_accepted_and_either_rotated_token_works(
    token_receiver: tuple[str, Runtime],
) -> None:
    base, rt = token_receiver
    first = httpx.post(
        f"{base}/webhooks/zapier", content=BODY, headers={**JSON, "authorization": f"Bearer {TOKEN}"}
    )
    assert first.status_code == 202, first.text
    other = BODY.replace(b"zap-1", b"zap-2")
    second = httpx.post(
        f"{base}/webhooks/zapier", content=other, headers={**JSON, "authorization": f"bearer {OLD_TOKEN}"}
    )
    assert second.status_code == 202
    assert second.json()["event_id"] != first.json()["event_id"]
    assert leads(rt) == 2


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing Authorization: Bearer"),
        ({"authorization": TOKEN}, "missing Authorization: Bearer"),
        ({"authorization": f"Basic {TOKEN}"}, "missing Authorization: Bearer"),
        ({"authorization": f"Bearer {TOKEN[:-1]}"}, "the token does not match"),
        ({"authorization": f"Bearer {TOKEN}x"}, "the token does not match"),
        ({"authorization": b"Bearer " + "é".encode() * 40}, "the token does not match"),
    ],
)
def test_a_wrong_or_missing_token_is_401_with_a_reason_and_nothing_stored(
    token_receiver: tuple[str, Runtime], headers: dict[str, Any], reason: str
) -> None:
    base, rt = token_receiver
    response = httpx.post(f"{base}/webhooks/zapier", content=BODY, headers={**JSON, **headers})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert reason in response.json()["message"]
    assert TOKEN not in response.text
    assert leads(rt) == 0


def test_the_delivery_id_header_keys_a_token_delivery_else_the_body_hash(
    token_receiver: tuple[str, Runtime],
) -> None:
    base, rt = token_receiver
    auth = {**JSON, "authorization": f"Bearer {TOKEN}"}
    one = httpx.post(f"{base}/webhooks/zapier", content=BODY, headers={**auth, "x-zap-id": "run-1"}).json()
    same = httpx.post(f"{base}/webhooks/zapier", content=BODY, headers={**auth, "x-zap-id": "run-1"}).json()
    new = httpx.post(f"{base}/webhooks/zapier", content=BODY, headers={**auth, "x-zap-id": "run-2"}).json()
    assert same == {"event_id": one["event_id"], "duplicate": True}
    assert new["duplicate"] is False
    # no id header: the identical body again is the same delivery (documented in docs/zapier.md)
    form = f"{base}/webhooks/form/{FORM_TOKEN}"
    first = httpx.post(form, content=BODY, headers=JSON).json()
    again = httpx.post(form, content=BODY, headers=JSON).json()
    assert again == {"event_id": first["event_id"], "duplicate": True}
    assert leads(rt) == 3


def test_a_path_token_is_accepted_only_where_configured_and_never_logged(
    token_receiver: tuple[str, Runtime],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    own_logs: None,
) -> None:
    base, rt = token_receiver
    logs.configure("DEBUG")  # leadrelay's own lines: onto the stderr capfd reads in this test
    logging.getLogger().addHandler(caplog.handler)  # and the libraries' (configure() replaced caplog's)
    caplog.set_level(logging.DEBUG)
    assert httpx.post(f"{base}/webhooks/form/{FORM_TOKEN}", content=BODY, headers=JSON).status_code == 202
    wrong = httpx.post(f"{base}/webhooks/form/{FORM_TOKEN[:-2]}xx", content=BODY, headers=JSON)
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_token")
    bare = httpx.post(f"{base}/webhooks/form", content=BODY, headers=JSON)
    assert bare.status_code == 401
    assert "in the URL" in bare.json()["message"]
    # a header channel refuses a token in the URL (it would end up in proxies' logs)
    misplaced = httpx.post(f"{base}/webhooks/zapier/{TOKEN}", content=BODY, headers=JSON)
    assert misplaced.status_code == 401
    assert "Authorization header" in misplaced.json()["message"]
    signed_channel = httpx.post(f"{base}/webhooks/canonical/{TOKEN}", content=BODY, headers=JSON)
    assert signed_channel.status_code == 401
    assert leads(rt) == 1
    server_side = [
        r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))
    ]  # the client's own
    out, err = capfd.readouterr()
    logged = out + err + "".join(r.getMessage() + str(r.__dict__) for r in server_side)
    assert "webhook_refused" in logged  # the refusals were logged: without the token
    assert FORM_TOKEN[:-2] not in logged
    assert TOKEN not in logged


def test_an_access_log_line_is_printed_without_the_path_token() -> None:
    line = f'127.0.0.1:5100 - "POST /webhooks/form/{FORM_TOKEN}?x=1 HTTP/1.1" 202'
    assert mask_personal(line) == '127.0.0.1:5100 - "POST /webhooks/form/[redacted]?x=1 HTTP/1.1" 202'
    assert mask_personal("POST /webhooks/form HTTP/1.1") == "POST /webhooks/form HTTP/1.1"


def test_verify_token_compares_every_token_and_never_quotes_one() -> None:
    tokens = [TOKEN.encode(), OLD_TOKEN.encode()]
    assert verify_token({"authorization": f"Bearer {OLD_TOKEN}", "x-id": "7"}, None, tokens, id_header="X-Id")
    with pytest.raises(SignatureError) as err:
        verify_token({"authorization": "Bearer nope"}, None, tokens)
    assert "nope" not in str(err.value)
    with pytest.raises(SignatureError, match="in the URL"):
        verify_token({}, None, tokens, location="path")


@pytest.mark.parametrize(
    ("webhook", "problem"),
    [
        ({"scheme": "token", "token": "short"}, "at least 32 characters (this one has 5)"),
        ({"scheme": "token", "token": TOKEN + " " + "x" * 31}, "at least 32 characters (this one has 31)"),
        ({"scheme": "token", "token": "a/b" + "c" * 40}, "URL-safe"),
        ({"scheme": "token", "secret": TOKEN}, "not secret"),
        ({"scheme": "standard-webhooks", "token": TOKEN}, "for scheme: token"),
        ({"scheme": "token", "timestamp_header": "X-T", "token": TOKEN}, "timestamp_header is for"),
    ],
)
def test_a_bad_token_configuration_is_refused_at_load_by_its_key(
    webhook: dict[str, str], problem: str
) -> None:
    data = {"channels": {"zapier": {"lead_source": 11, "adapter": "canonical", "webhook": webhook}}}
    with pytest.raises(RoutingError) as err:
        routing_with(**data)
    assert any(p.startswith("channels.zapier.webhook") and problem in p for p in err.value.problems), (
        err.value
    )
    for key in ("token", "secret"):  # the values themselves are never quoted back
        for value in webhook.get(key, "").split():
            assert value not in str(err.value)


def test_a_short_token_from_the_environment_is_refused_when_resolved(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZAP_TOKEN", "abc123")
    routing = routing_with(
        channels={"zapier": {"lead_source": 11, "webhook": {"scheme": "token", "token_env": "ZAP_TOKEN"}}}
    )
    with pytest.raises(RoutingError) as err:
        routing.channels["zapier"].webhook.keys("channels.zapier.webhook")  # type: ignore[union-attr]
    assert err.value.problems == [
        "channels.zapier.webhook.token: a token must be at least 32 characters (this one has 6); "
        'make one with: python3 -c "import secrets; print(secrets.token_urlsafe(32))"'
    ]
    assert "abc123" not in str(err.value)
