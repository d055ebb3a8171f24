"""Fault injection: every action, countdown, matching, and the rules' control API."""

from __future__ import annotations

import time

import httpx
import pytest

from leadrelay.sandbox import SandboxHandle

from .support import BUSINESSES, COWORKERS, OPPORTUNITIES, USER, coworker_body, opportunity_body


def emails(sandbox: SandboxHandle) -> list[str]:
    return [coworker["Email"] for coworker in sandbox.coworkers() if coworker["Id"] > 100_000]


def test_status_answers_without_performing(sandbox: SandboxHandle, api: httpx.Client) -> None:
    sandbox.add_fault("status", method="POST", path_regex="coworkers$", status=503)

    failed = api.post(COWORKERS, json=coworker_body())
    retried = api.post(COWORKERS, json=coworker_body())

    assert failed.status_code == 503
    assert retried.status_code == 200
    assert emails(sandbox) == ["ada@example.com"]
    assert sandbox.counters().faults_fired == 1
    assert [entry["fault"] for entry in sandbox.requests()] == ["status", None]


def test_status_after_commit_performs_then_fails(
    sandbox: SandboxHandle, api: httpx.Client, coworker: int
) -> None:
    sandbox.add_fault("status_after_commit", method="POST", path_regex="crmopportunities")

    response = api.post(OPPORTUNITIES, json=opportunity_body(coworker, Name="HubbleHq enq_1"))

    assert (response.status_code, response.json()) == (500, {"Message": "An error has occurred."})
    assert [o["Name"] for o in sandbox.opportunities()] == ["HubbleHq enq_1"]


def test_delay_answers_late(sandbox: SandboxHandle, api: httpx.Client) -> None:
    sandbox.add_fault("delay", path_regex="businesses", seconds=0.3, times=2)

    started = time.monotonic()
    slow = api.get(BUSINESSES)
    elapsed = time.monotonic() - started
    with pytest.raises(httpx.ReadTimeout):
        api.get(BUSINESSES, timeout=0.1)

    assert slow.status_code == 200
    assert elapsed >= 0.3


def test_delay_after_commit_times_the_client_out_after_the_write(
    sandbox: SandboxHandle, api: httpx.Client
) -> None:
    sandbox.add_fault("delay_after_commit", method="POST", seconds=1)

    with pytest.raises(httpx.ReadTimeout):
        api.post(COWORKERS, json=coworker_body(), timeout=0.2)

    assert emails(sandbox) == ["ada@example.com"]


def test_drop_breaks_the_connection_without_performing(sandbox: SandboxHandle, api: httpx.Client) -> None:
    sandbox.add_fault("drop", method="POST")

    with pytest.raises(httpx.TransportError):
        api.post(COWORKERS, json=coworker_body())

    assert emails(sandbox) == []
    assert api.post(COWORKERS, json=coworker_body()).status_code == 200
    assert [entry["status"] for entry in sandbox.requests()] == [0, 200]


def test_drop_after_commit_breaks_the_connection_after_the_write(
    sandbox: SandboxHandle, api: httpx.Client, coworker: int
) -> None:
    sandbox.add_fault("drop_after_commit", method="POST", path_regex="crmopportunities")

    with pytest.raises(httpx.TransportError):
        api.post(OPPORTUNITIES, json=opportunity_body(coworker, Name="Kontor sp_10442"))

    assert [o["Name"] for o in sandbox.opportunities()] == ["Kontor sp_10442"]


def test_throttle_answers_409_with_the_given_retry_after(sandbox: SandboxHandle, api: httpx.Client) -> None:
    sandbox.add_fault("throttle", seconds=2)

    response = api.get(BUSINESSES)

    assert (response.status_code, response.content, response.headers["Retry-After"]) == (409, b"", "2")
    assert sandbox.counters().throttled == 1


def test_soft_fail_answers_200_but_was_not_successful(sandbox: SandboxHandle, api: httpx.Client) -> None:
    sandbox.add_fault("soft_fail", method="POST")

    response = api.post(COWORKERS, json=coworker_body())

    assert response.status_code == 200
    assert response.json()["WasSuccessful"] is False
    assert response.json()["Value"] is None
    assert emails(sandbox) == []


def test_rules_match_method_and_path_and_count_down(sandbox: SandboxHandle, api: httpx.Client) -> None:
    rule = sandbox.add_fault("status", method="post", path_regex="coworkers$", status=502, times=2)

    read = api.get(COWORKERS)
    writes = [api.post(COWORKERS, json=coworker_body()).status_code for _ in range(3)]

    assert rule.method == "POST"
    assert read.status_code == 200
    assert writes == [502, 502, 200]
    assert read.headers["content-type"].startswith("application/json")
    assert sandbox.state.fault_rules() == []


def test_a_rule_that_never_fires(sandbox: SandboxHandle, api: httpx.Client) -> None:
    sandbox.add_fault("status", probability=0, times=None)

    statuses = {api.get(BUSINESSES).status_code for _ in range(10)}

    assert statuses == {200}
    assert [(rule.fired, rule.times) for rule in sandbox.state.fault_rules()] == [(0, None)]


def test_rules_can_target_one_login(sandbox: SandboxHandle, api: httpx.Client) -> None:
    sandbox.add_fault("status", tenant="someone-else@example.com")

    assert api.get(BUSINESSES).status_code == 200


def test_rules_through_the_control_api(sandbox: SandboxHandle, api: httpx.Client, anon: httpx.Client) -> None:
    created = anon.post("/_sandbox/faults", json=[{"action": "status", "status": 503}, {"action": "drop"}])
    listed = anon.get("/_sandbox/faults").json()

    assert created.status_code == 201
    assert [(rule["action"], rule["times"]) for rule in listed] == [("status", 1), ("drop", 1)]
    assert anon.delete(f"/_sandbox/faults/{listed[1]['id']}").status_code == 200
    assert anon.delete(f"/_sandbox/faults/{listed[1]['id']}").status_code == 404
    assert api.get(BUSINESSES).status_code == 503
    assert api.get(BUSINESSES).status_code == 200
    anon.post("/_sandbox/faults", json={"action": "status", "times": None})
    assert anon.delete("/_sandbox/faults").json() == {"removed": 1}
    assert sandbox.counters(USER).faults_fired == 1


@pytest.mark.parametrize(
    "rule",
    [{"action": "explode"}, {"action": "status", "path_regex": "("}, {"action": "delay", "seconds": -1}, {}],
)
def test_invalid_rules_are_refused(anon: httpx.Client, rule: dict[str, object]) -> None:
    response = anon.post("/_sandbox/faults", json=rule)

    assert response.status_code == 422
    assert anon.get("/_sandbox/faults").json() == []
