"""One sandbox for the whole session (limits off), reset before every test; real HTTP via httpx."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from leadrelay.sandbox import SandboxHandle, running_sandbox

from .support import COWORKERS, coworker_body


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxHandle]:
    with running_sandbox(limits_enabled=False) as handle:
        yield handle


@pytest.fixture
def sandbox(sandbox_server: SandboxHandle) -> SandboxHandle:
    sandbox_server.reset()
    return sandbox_server


@pytest.fixture
def api(sandbox: SandboxHandle) -> Iterator[httpx.Client]:
    """A client of the default tenant (HTTP Basic)."""
    with httpx.Client(base_url=sandbox.base_url, auth=sandbox.auth, timeout=5) as client:
        yield client


@pytest.fixture
def anon(sandbox: SandboxHandle) -> Iterator[httpx.Client]:
    """A client without credentials (the token endpoint, the control API, 401s)."""
    with httpx.Client(base_url=sandbox.base_url, timeout=5) as client:
        yield client


@pytest.fixture
def new_coworker(api: httpx.Client) -> Callable[..., int]:
    """Create a coworker through the API; its Id."""
    created = 0

    def create(**overrides: Any) -> int:
        nonlocal created
        created += 1
        body = coworker_body(**({"Email": f"person{created}@example.com"} | overrides))
        response = api.post(COWORKERS, json=body)
        assert response.status_code == 200, response.text
        return int(response.json()["Value"]["Id"])

    return create


@pytest.fixture
def coworker(new_coworker: Callable[..., int]) -> int:
    return new_coworker()
