"""The webhook door answered around FastAPI's routing (api.webhooks.WebhookDoor) answers as the routes do."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from leadrelay.api.app import create_app
from leadrelay.api.limits import RequestLimits
from leadrelay.api.webhooks import WebhookDoor, door_route
from leadrelay.routing import Routing
from leadrelay.runtime import Runtime
from tests.conftest import ThreadedServer, make_settings
from tests.intake.test_webhooks import SAMPLE, signed


def scope(method: str, path: str, root_path: str = "") -> dict[str, object]:
    return {"type": "http", "method": method, "path": path, "root_path": root_path}


@pytest.mark.parametrize(
    ("method", "path", "root_path", "route"),
    [
        ("POST", "/webhooks/canonical", "", ("canonical", None)),
        ("POST", "/webhooks/hubblehq", "", ("hubblehq", None)),
        ("POST", "/webhooks/form/t0ken", "", ("form", "t0ken")),
        ("POST", "/relay/webhooks/form/t0ken", "/relay", ("form", "t0ken")),  # behind a proxy's prefix
        ("GET", "/webhooks/canonical", "", None),
        ("POST", "/webhooks/", "", None),
        ("POST", "/webhooks//t0ken", "", None),
        ("POST", "/webhooks/canonical/", "", None),
        ("POST", "/webhooks/form/t0ken/", "", None),
        ("POST", "/webhooks/a/b/c", "", None),
        ("POST", "/webhooksx/canonical", "", None),
        ("POST", "/admin/api/leads", "", None),
    ],
)
def test_the_door_takes_the_paths_its_routes_match_and_no_other(
    method: str, path: str, root_path: str, route: tuple[str, str | None] | None
) -> None:
    assert door_route(scope(method, path, root_path)) == route


def without_door(app: FastAPI) -> FastAPI:
    """The same app with its routes answering the door (the middleware stack is built on first use)."""
    app.user_middleware = [m for m in app.user_middleware if m.cls is not WebhookDoor]
    return app


@pytest.fixture
def two_receivers(clean_db: str, redis_broker: str, routing: Routing) -> Iterator[tuple[str, str, str]]:
    rt = Runtime.load(make_settings(database_url=clean_db), routing)
    secret = routing.channels["canonical"].webhook.secret.get_secret_value()  # type: ignore[union-attr]
    with ThreadedServer(create_app(rt)) as door, ThreadedServer(without_door(create_app(rt))) as routes:
        yield door.base_url, routes.base_url, secret
    rt.close()


def test_the_receiver_answers_the_door_inside_its_request_limits(receiver) -> None:
    """The served app has the door, and the limits (headers, 431) still come first."""
    app = create_app(receiver[1])
    assert [m.cls for m in app.user_middleware][:2] == [RequestLimits, WebhookDoor]


def test_the_door_answers_every_request_as_the_routes_do(two_receivers: tuple[str, str, str]) -> None:
    door, routes, secret = two_receivers
    body = json.dumps(SAMPLE).encode()
    good = signed(secret, body, delivery_id="msg_door_1")
    cases: list[tuple[str, str, dict[str, str], bytes]] = [
        ("POST", "/webhooks/canonical", good, body),
        ("POST", "/webhooks/canonical", {**good, "webhook-signature": "v1,bm9wZQ=="}, body),
        ("POST", "/webhooks/canonical", signed(secret, b"{not json"), b"{not json"),
        ("POST", "/webhooks/canonical", signed(secret, b"x" * 300_000), b"x" * 300_000),
        ("POST", "/webhooks/nowhere", good, body),
        ("POST", "/webhooks/canonical/t0ken", good, body),
        ("POST", "/webhooks/canonical/", good, body),
        ("POST", "/webhooks/a/b/c", good, body),
        ("GET", "/webhooks/canonical", {}, b""),
        ("POST", "/webhooks/canonical", {f"x-h{n}": "v" for n in range(200)}, body),
    ]
    for method, path, headers, content in cases:
        first = httpx.request(method, door + path, headers=headers, content=content)
        second = httpx.request(method, routes + path, headers=headers, content=content)
        assert first.status_code == second.status_code, (method, path, first.text, second.text)
        assert first.headers.get("content-type") == second.headers.get("content-type"), path
        if first.status_code == 202:  # the same delivery, stored once: the second door knows it
            assert first.json()["duplicate"] is False
            assert second.json() == {"event_id": first.json()["event_id"], "duplicate": True}
        else:
            assert first.content == second.content, (method, path)
    statuses = [httpx.request(m, door + p, headers=h, content=c).status_code for m, p, h, c in cases]
    assert statuses == [202, 401, 400, 413, 404, 401, 307, 404, 405, 431]


def test_an_unexpected_error_at_the_door_is_a_500(
    two_receivers: tuple[str, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from leadrelay.intake import store

    async def broken(*_: object, **__: object) -> None:
        raise RuntimeError("the ledger's pool is gone")

    monkeypatch.setattr(store.PoolIntakeStore, "record", broken)
    door, routes, secret = two_receivers
    body = json.dumps(SAMPLE).encode()
    for base in (door, routes):
        answer = httpx.post(f"{base}/webhooks/canonical", content=body, headers=signed(secret, body))
        assert (answer.status_code, answer.text) == (500, "Internal Server Error")
