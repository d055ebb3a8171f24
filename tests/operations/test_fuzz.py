"""schemathesis against the receiver's own OpenAPI: no request makes a 5xx, every answer is as documented.

The receiver runs over real HTTP on the real Postgres and Redis, with a ledger
that holds delivered, duplicate and dead leads, so the admin API's detail pages
and actions meet real rows. Each operation gets a bounded number of generated
requests, valid and invalid ones (schemathesis's checks: no server error,
status codes, content types, headers and bodies as documented, invalid input
refused, valid input accepted, auth not ignored), so the file stays well under a
minute and a half on two cores.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case, GenerationMode, HookContext

from leadrelay.api.app import create_app
from leadrelay.models import Lead
from leadrelay.runtime import Runtime
from leadrelay.sandbox import running_sandbox
from tests.conftest import PG_URL, REDIS_URL, make_settings, truncate_all
from tests.dead_letters.test_replay import GOOD_ROUTING, settle
from tests.helpers import canonical, ingest
from tests.intake.test_webhooks import signed
from tests.operations.support import ADMIN_TOKEN, receiver, runtime_with

# LEADRELAY_FUZZ_EXAMPLES=500 for a longer hunt than CI's
EXAMPLES = int(os.environ.get("LEADRELAY_FUZZ_EXAMPLES", "50"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
# the receiver under test; its engine connects on first use, once the test database exists.
# No scheduler runs here, and /readyz would rightly say so with a 503 (a 5xx fails the fuzzing).
RECEIVER = Runtime.load(
    make_settings(database_url=PG_URL, admin_token=ADMIN_TOKEN, ready_max_scheduler_lag_seconds=None),
    GOOD_ROUTING,
)
SECRET = GOOD_ROUTING.channels["canonical"].webhook.secret.get_secret_value()  # type: ignore[union-attr]
# The document is the app's own (what GET /openapi.json serves); the requests go over real HTTP.
DOCUMENT = create_app(RECEIVER).openapi()

schema = schemathesis.openapi.from_dict(DOCUMENT)
# Unknown query parameters are ignored, as HTTP APIs usually do, and the OpenAPI claims nothing else:
# a request is "invalid" for its declared parameters, not for ones nobody declared.
schema.config.generation.update(allow_extra_parameters=False)


@schema.hook
def filter_query(context: HookContext, query: dict[str, Any] | None) -> bool:
    """Leave out an empty list or object as a query value: it is sent as nothing, so it is not invalid."""
    return not any(value in ([], {}) for value in (query or {}).values())


valid_only = schemathesis.openapi.from_dict(DOCUMENT)
valid_only.config.generation.update(modes=[GenerationMode.POSITIVE], allow_extra_parameters=False)


@pytest.fixture(scope="module")
def receiver_url(pg_url: str) -> Iterator[str]:
    """The receiver, over a ledger holding one lead of each kind an admin meets."""
    truncate_all(pg_url)
    redis.Redis.from_url(REDIS_URL).flushdb()
    with running_sandbox(limits_enabled=False) as sandbox:
        rt = runtime_with(pg_url, sandbox, GOOD_ROUTING)
        try:
            assert settle(rt, ingest(rt, canonical())) == "delivered"
            assert settle(rt, ingest(rt, canonical())) == "duplicate"
            unreadable = canonical(external_id="fz-1", contact={"full_name": "nobody"})
            assert settle(rt, ingest(rt, unreadable)) == "dead"
            no_email = canonical(
                external_id="fz-2", contact={"full_name": "Caller", "phone": "+442079460000"}
            )
            assert settle(rt, ingest(rt, no_email)) == "dead"
            ingest(rt, b"not even json")
        finally:
            rt.close()
    try:
        with receiver(RECEIVER) as base:
            yield base
    finally:
        RECEIVER.close()


@schema.include(tag=["webhooks", "health"]).parametrize()
@FUZZ
def test_the_receiver_never_fails_and_answers_as_documented(case: Case, receiver_url: str) -> None:
    response = case.call_and_validate(base_url=receiver_url)
    if case.method == "POST" and case.path == "/webhooks/{channel}":
        assert response.status_code in (401, 404)  # nothing unsigned gets in


@valid_only.include(path="/webhooks/{channel}").parametrize()
@FUZZ
def test_any_signed_json_is_accepted_and_stored_byte_for_byte(case: Case, receiver_url: str) -> None:
    case.path_parameters = {"channel": "canonical"}
    sent = requests.Request(**case.as_transport_kwargs(base_url=receiver_url)).prepare()
    body = sent.body if isinstance(sent.body, bytes) else (sent.body or "").encode()
    sent.headers.update(signed(SECRET, body, delivery_id=f"fuzz_{uuid.uuid4().hex}"))
    with requests.Session() as http:
        response = http.send(sent, timeout=10)
    case.validate_response(response)
    assert response.status_code == 202
    with RECEIVER.sessions() as session:
        lead = session.get(Lead, response.json()["event_id"])
        assert lead is not None
        assert lead.raw_body == body


@schema.include(tag="admin").parametrize()
@FUZZ
def test_the_admin_api_never_fails_and_answers_as_documented(case: Case, receiver_url: str) -> None:
    case.call_and_validate(base_url=receiver_url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})


# What the fuzzing found, pinned: each of these was a 500 or a silently accepted invalid request.
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
FOUND = [
    pytest.param("GET", "/admin/api/dead-letters/41521462872623212920832", None, id="id-past-bigint"),
    pytest.param("GET", "/admin/api/leads?channel=%00", None, id="nul-in-a-filter"),
    pytest.param("POST", "/admin/api/dead-letters/1/discard", {"why": "a\u0000b"}, id="nul-in-a-reason"),
    pytest.param(
        "POST", "/admin/api/dead-letters/replay", {"since": "0001-01-01T00:00:01+01:00"}, id="year-0-in-utc"
    ),
    pytest.param("GET", "/admin/api/dead-letters?since=0.5", None, id="unix-seconds-for-a-date-time"),
    pytest.param("POST", "/admin/api/dead-letters/replay", {"dry_run": 0}, id="number-for-a-boolean"),
    pytest.param("GET", "/admin/api/leads?channel=a&channel=b", None, id="one-filter-twice"),
]


@pytest.mark.parametrize(("method", "path", "body"), FOUND)
def test_what_the_fuzzing_found_is_refused_with_422(
    receiver_url: str, method: str, path: str, body: dict[str, Any] | None
) -> None:
    response = httpx.request(method, f"{receiver_url}{path}", json=body, headers=ADMIN)
    assert response.status_code == 422, response.text


def test_a_method_a_path_does_not_take_is_answered_with_the_methods_it_does(receiver_url: str) -> None:
    response = httpx.options(f"{receiver_url}/admin/api/dead-letters/replay", headers=ADMIN)
    assert (response.status_code, response.headers["allow"]) == (405, "POST")
