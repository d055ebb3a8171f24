"""The control API (``/_sandbox/``), the quirks, and running the sandbox."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from datetime import UTC, datetime

import httpx
import pytest

from leadrelay.sandbox import SandboxHandle, running_sandbox

from .support import BUSINESSES, COWORKERS, OPPORTUNITIES, TOKEN, USER, coworker_body, opportunity_body


def test_state_shows_records_counters_and_settings(
    sandbox: SandboxHandle, api: httpx.Client, anon: httpx.Client
) -> None:
    api.post(COWORKERS, json=coworker_body())
    api.get(BUSINESSES)

    state = anon.get("/_sandbox/state").json()

    mine = state["tenants"][USER]
    assert [c["Email"] for c in mine["coworkers"]][-1] == "ada@example.com"
    assert mine["opportunities"] == []
    assert mine["counters"] == {
        "requests": 2,
        "writes": 1,
        "throttled": 0,
        "faults_fired": 0,
        "soft_failures": 0,
        "welcome_emails": 0,
        "default_business_landings": 0,
    }
    assert state["limits"] == {"enabled": False, "speed": 1.0, "throttle_status": 409, "location_limit": 5000}
    assert state["faults"] == []


def test_state_of_one_tenant(anon: httpx.Client) -> None:
    assert list(anon.get("/_sandbox/state", params={"tenant": USER}).json()["tenants"]) == [USER]
    assert anon.get("/_sandbox/state", params={"tenant": "nobody@example.com"}).status_code == 404


def test_the_request_log_filters_by_time(api: httpx.Client, anon: httpx.Client) -> None:
    api.get(BUSINESSES)
    since = time.time()
    api.get(f"{COWORKERS}/3001", params={"x": "1"})
    anon.get(BUSINESSES)

    entries = anon.get("/_sandbox/requests", params={"since": since}).json()["requests"]
    iso = datetime.fromtimestamp(since, UTC).isoformat()
    by_iso = anon.get("/_sandbox/requests", params={"since": iso}).json()["requests"]

    assert [(e["tenant"], e["method"], e["path"], e["query"], e["status"]) for e in entries] == [
        (USER, "GET", f"{COWORKERS}/3001", "x=1", 200),
        (None, "GET", BUSINESSES, "", 401),
    ]
    assert [e["seq"] for e in by_iso] == [e["seq"] for e in entries]
    assert all(e["time"].endswith("Z") for e in entries)
    assert anon.get("/_sandbox/requests", params={"since": "yesterday-ish"}).status_code == 400


def test_the_request_log_is_bounded() -> None:
    with running_sandbox(limits_enabled=False, request_log_size=3) as sandbox, httpx.Client() as client:
        for _ in range(5):
            client.get(f"{sandbox.base_url}{BUSINESSES}", auth=sandbox.auth)

        assert [entry["seq"] for entry in sandbox.requests()] == [3, 4, 5]


def test_reset_returns_to_the_start(sandbox: SandboxHandle, api: httpx.Client, anon: httpx.Client) -> None:
    token = anon.post(TOKEN, data={"grant_type": "password", "username": USER, "password": "sandbox"}).json()
    api.post(COWORKERS, json=coworker_body())
    sandbox.set_limits(location_limit=1)
    sandbox.add_fault("status", times=None, path_regex="nothing-matches")

    assert anon.post("/_sandbox/reset").json() == {"reset": True}

    assert [c["Id"] for c in sandbox.coworkers()] == [3001, 3002, 3003, 3004, 3005]
    assert sandbox.state.limits.location_limit == 5000
    assert sandbox.state.fault_rules() == []
    assert sandbox.requests() == []
    stale = anon.get(BUSINESSES, headers={"Authorization": f"Bearer {token['access_token']}"})
    assert stale.status_code == 401


def test_tenants_are_separate_accounts(api: httpx.Client, anon: httpx.Client) -> None:
    created = anon.post("/_sandbox/tenants", json={"username": "b@example.com", "password": "pw"})
    api.post(COWORKERS, json=coworker_body())

    theirs = anon.get(COWORKERS, params={"Coworker_Email": "ada@example.com"}, auth=("b@example.com", "pw"))

    assert created.status_code == 201
    assert theirs.json()["Records"] == []
    assert anon.get(f"{BUSINESSES}/1002", auth=("b@example.com", "pw")).json()["Name"] == "Mission Hub"
    assert (
        anon.post("/_sandbox/tenants", json={"username": "b@example.com", "password": "x"}).status_code == 409
    )
    assert anon.post("/_sandbox/tenants", json={"username": "c@example.com"}).status_code == 422
    assert anon.get("/_sandbox/tenants").json() == {"tenants": [USER, "b@example.com"]}


def test_an_unseeded_tenant_is_empty(anon: httpx.Client) -> None:
    anon.post("/_sandbox/tenants", json={"username": "empty@example.com", "password": "pw", "seed": False})
    auth = ("empty@example.com", "pw")

    assert anon.get(BUSINESSES, auth=auth).json()["TotalItems"] == 0
    bare = coworker_body()
    del bare["InvoicingBusinessId"], bare["Businesses"]
    created = anon.post(COWORKERS, json=bare, auth=auth).json()["Value"]["Id"]
    assert anon.get(f"{COWORKERS}/{created}", auth=auth).json()["Businesses"] is None


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/_sandbox/limits", {"speed": 0}),
        ("/_sandbox/limits", {"throttle_status": 418}),
        ("/_sandbox/limits", {"bogus": 1}),
        ("/_sandbox/quirks", {"soft_fail_probability": 2}),
        ("/_sandbox/tokens", {"expires_in": 0}),
    ],
)
def test_settings_are_validated(anon: httpx.Client, path: str, body: dict[str, object]) -> None:
    before = anon.get(path).json()

    response = anon.put(path, json=body)

    assert response.status_code == 422
    assert anon.get(path).json() == before


def test_settings_change_only_what_is_named(sandbox: SandboxHandle, anon: httpx.Client) -> None:
    limits = anon.put("/_sandbox/limits", json={"location_limit": 10}).json()
    quirks = anon.put("/_sandbox/quirks", json={"throttle_status": 429}).json()

    assert limits == {"enabled": False, "speed": 1.0, "throttle_status": 409, "location_limit": 10}
    assert quirks == {"soft_fail_probability": 0.0, "validation_as_200": False}
    assert sandbox.state.limits.throttle_status == 429


def test_validation_failures_can_answer_200(
    sandbox: SandboxHandle, api: httpx.Client, anon: httpx.Client
) -> None:
    anon.put("/_sandbox/quirks", json={"validation_as_200": True})

    response = api.post(COWORKERS, json={"FullName": "No Email"})

    assert response.status_code == 200
    assert response.json()["WasSuccessful"] is False
    assert [e["PropertyName"] for e in response.json()["Errors"]] == [
        "Email",
        "CountryId",
        "SimpleTimeZoneId",
    ]


def test_writes_can_fail_softly(
    sandbox: SandboxHandle, api: httpx.Client, anon: httpx.Client, coworker: int
) -> None:
    anon.put("/_sandbox/quirks", json={"soft_fail_probability": 1})

    write = api.post(OPPORTUNITIES, json=opportunity_body(coworker))
    read = api.get(OPPORTUNITIES)

    assert (write.status_code, write.json()["WasSuccessful"]) == (200, False)
    assert read.json()["Records"] == []
    assert sandbox.opportunities() == []
    assert sandbox.counters().soft_failures == 1


def test_token_lifetime_and_revocation(anon: httpx.Client) -> None:
    form = {"grant_type": "password", "username": USER, "password": "sandbox"}
    assert anon.put("/_sandbox/tokens", json={"expires_in": 5}).json()["expires_in"] == 5
    token = anon.post(TOKEN, data=form).json()
    assert token["expires_in"] == 5

    assert anon.delete("/_sandbox/tokens").json() == {"revoked": 2}

    denied = anon.get(BUSINESSES, headers={"Authorization": f"Bearer {token['access_token']}"})
    assert denied.status_code == 401


def test_deleting_a_coworker_behind_the_apis_back(api: httpx.Client, anon: httpx.Client) -> None:
    assert anon.delete(f"/_sandbox/tenants/{USER}/coworkers/3001").json() == {"deleted": 3001}

    assert anon.delete(f"/_sandbox/tenants/{USER}/coworkers/3001").status_code == 404
    assert api.get(f"{COWORKERS}/3001").status_code == 404


def test_the_index_names_the_service(anon: httpx.Client) -> None:
    assert anon.get("/").json()["tenants"] == [USER]
    assert anon.get("/elsewhere").status_code == 404


def test_running_sandbox_stops_cleanly() -> None:
    with running_sandbox(tenants=[{"username": "solo@example.com", "password": "pw"}]) as sandbox:
        url = sandbox.base_url
        assert httpx.get(f"{url}{BUSINESSES}", auth=("solo@example.com", "pw")).status_code == 200
        assert sandbox.state.limits.enabled is True

    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}{BUSINESSES}")


def test_serve_runs_the_sandbox_in_the_foreground() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = "import sys; from leadrelay.sandbox import serve; serve('127.0.0.1', int(sys.argv[1]))"
    server = subprocess.Popen([sys.executable, "-c", code, str(port)], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}{BUSINESSES}", auth=(USER, "sandbox"))
                break
            except httpx.ConnectError:
                assert server.poll() is None and time.monotonic() < deadline, "serve() did not start"
                time.sleep(0.05)
        assert [record["Id"] for record in response.json()["Records"]] == [1001, 1002, 1003]
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=10)
    assert b"Nexudus sandbox on http://127.0.0.1" in stderr
