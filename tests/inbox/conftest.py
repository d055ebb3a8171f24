"""A real Dovecot and a local OAuth2 server for the session; a fresh ledger per test."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from leadrelay.routing import Routing
from leadrelay.runtime import SANDBOX_PASSWORD, SANDBOX_USERNAME, Runtime
from leadrelay.testing.dovecot import DOVECOT, Dovecot
from leadrelay.worker.imap import oauth
from tests.conftest import UNTHROTTLED, make_settings, routing_with
from tests.inbox.oauth_server import AuthServer

HERE = Path(__file__).parent
Folders = Callable[..., str]
MakeRuntime = Callable[..., Runtime]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.imap)


@pytest.fixture(scope="session")
def auth_server() -> Iterator[AuthServer]:
    with AuthServer(user="leads") as server:
        yield server


@pytest.fixture(scope="session")
def dovecot(auth_server: AuthServer) -> Iterator[Dovecot]:
    if not Path(DOVECOT).exists():
        pytest.fail("Dovecot is not installed: apt-get install dovecot-imapd (listed in .ci/apt-packages)")
    server = Dovecot.start(introspection_url=f"{auth_server.base_url}/introspect")
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _fresh_tokens(auth_server: AuthServer) -> None:
    oauth.clear()
    auth_server.reset()


@pytest.fixture
def folders(dovecot: Dovecot) -> Callable[..., str]:
    """A new folder per call, holding ``mails`` (tests share the server, never a folder)."""

    def make(*mails: bytes, user: str = "leads", prefix: str = "in") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        with dovecot.client(user) as client:
            client.create(name)
            for raw in mails:
                client.append(name, raw)
        return name

    return make


def inbox_routing(inboxes: dict[str, Any], **changes: Any) -> Routing:
    return routing_with(accounts={"main": {"limits": UNTHROTTLED}}, inboxes=inboxes, **changes)


@pytest.fixture
def make_runtime(clean_db: str) -> Iterator[Callable[..., Runtime]]:
    """A runtime on the test ledger with the given inboxes (and the sandbox, when given)."""
    made: list[Runtime] = []

    def make(inboxes: dict[str, Any], *, sandbox: Any = None, **changes: Any) -> Runtime:
        overrides: dict[str, Any] = {"database_url": clean_db}
        if sandbox is not None:
            overrides |= {
                "nexudus_base_url": sandbox.base_url,
                "nexudus_username": SANDBOX_USERNAME,
                "nexudus_password": SANDBOX_PASSWORD,
                "nexudus_timeout": 2.0,
            }
        rt = Runtime.load(make_settings(**overrides), inbox_routing(inboxes, **changes))
        made.append(rt)
        return rt

    yield make
    for rt in made:
        rt.close()
