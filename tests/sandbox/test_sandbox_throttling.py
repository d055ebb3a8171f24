"""Throttling per login over exact sliding windows: 409 (or 429), empty body, Retry-After."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import pytest

from leadrelay.sandbox import SandboxHandle

from .support import BUSINESSES, COWORKERS, TOKEN, USER, coworker_body

THROTTLED = (409, 429)


@pytest.fixture
def limited(sandbox: SandboxHandle) -> SandboxHandle:
    sandbox.set_limits(enabled=True, speed=1.0)
    return sandbox


@dataclass
class PoliteClient:
    """Sends as fast as it may, and after a throttled answer waits Retry-After before retrying."""

    waits: list[float] = field(default_factory=list)
    throttled_after_waiting: int = 0

    def send(self, call: Callable[[], httpx.Response]) -> httpx.Response:
        response = call()
        while response.status_code in THROTTLED:
            wait = float(response.headers["Retry-After"])
            self.waits.append(wait)
            time.sleep(wait)
            response = call()
            self.throttled_after_waiting += response.status_code in THROTTLED
        return response


def test_calls_closer_than_100_ms_are_throttled(limited: SandboxHandle, api: httpx.Client) -> None:
    first = api.get(BUSINESSES)
    second = api.get(BUSINESSES)
    time.sleep(0.1)
    third = api.get(BUSINESSES)

    assert first.status_code == 200
    assert second.status_code == 409
    assert second.content == b""
    assert second.headers["Retry-After"] == "1"
    assert third.status_code == 200  # the throttled call did not count
    counters = limited.counters()
    assert (counters.requests, counters.throttled) == (3, 1)
    assert [entry["status"] for entry in limited.requests()] == [200, 409, 200]


def test_retry_after_has_hundredths_when_the_clock_is_sped_up(
    limited: SandboxHandle, api: httpx.Client
) -> None:
    limited.set_limits(speed=2)  # calls 50 ms apart

    api.get(BUSINESSES)
    throttled = api.get(BUSINESSES)

    wait = float(throttled.headers["Retry-After"])
    assert throttled.status_code == 409
    assert 0 < wait <= 0.05
    time.sleep(wait)
    assert api.get(BUSINESSES).status_code == 200


def test_writes_per_minute_and_a_polite_client_is_never_throttled_twice(
    limited: SandboxHandle, api: httpx.Client
) -> None:
    limited.set_limits(speed=10)  # 60 writes per 6 s, calls 10 ms apart
    client = PoliteClient()

    statuses = [
        client.send(
            lambda n=n: api.post(COWORKERS, json=coworker_body(Email=f"w{n}@example.com"))
        ).status_code
        for n in range(61)
    ]

    assert statuses == [200] * 61
    assert client.throttled_after_waiting == 0
    assert max(client.waits) > 1  # the 61st write waited for the per-minute window
    assert len(limited.coworkers()) == 5 + 61
    assert limited.counters().throttled == len(client.waits)


def test_reads_are_not_held_back_by_the_write_budget(limited: SandboxHandle, api: httpx.Client) -> None:
    limited.set_limits(speed=10)
    client = PoliteClient()
    for n in range(60):
        client.send(lambda n=n: api.post(COWORKERS, json=coworker_body(Email=f"r{n}@example.com")))
    time.sleep(0.01)

    write = api.post(COWORKERS, json=coworker_body(Email="one-too-many@example.com"))
    time.sleep(0.01)
    read = api.get(BUSINESSES)

    assert write.status_code == 409
    assert float(write.headers["Retry-After"]) > 1
    assert read.status_code == 200


def test_throttling_can_answer_429(limited: SandboxHandle, api: httpx.Client) -> None:
    limited.set_quirks(throttle_status=429)

    api.get(BUSINESSES)
    throttled = api.get(BUSINESSES)

    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "1"
    assert limited.counters().throttled == 1


def test_the_token_endpoint_is_exempt(limited: SandboxHandle, anon: httpx.Client) -> None:
    form = {"grant_type": "password", "username": USER, "password": limited.login.password}

    statuses = {anon.post(TOKEN, data=form).status_code for _ in range(10)}

    assert statuses == {200}


def test_each_login_has_its_own_budget(limited: SandboxHandle, api: httpx.Client, anon: httpx.Client) -> None:
    limited.add_tenant("second@example.com", "pw")

    mine = api.get(BUSINESSES)
    theirs = anon.get(BUSINESSES, auth=("second@example.com", "pw"))

    assert (mine.status_code, theirs.status_code) == (200, 200)


def test_limits_can_be_switched_off(limited: SandboxHandle, api: httpx.Client) -> None:
    limited.set_limits(enabled=False)

    statuses = {api.get(BUSINESSES).status_code for _ in range(30)}

    assert statuses == {200}
    assert limited.counters().throttled == 0
