"""The receiver over real HTTP, shared by the intake tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from leadrelay.api.app import create_app
from leadrelay.routing import Routing
from leadrelay.runtime import Runtime
from tests.conftest import ThreadedServer, make_settings


@pytest.fixture
def receiver(clean_db: str, redis_broker: str, routing: Routing) -> Iterator[tuple[str, Runtime, str]]:
    rt = Runtime.load(make_settings(database_url=clean_db), routing)
    secret = routing.channels["canonical"].webhook.secret.get_secret_value()  # type: ignore[union-attr]
    with ThreadedServer(create_app(rt)) as server:
        yield server.base_url, rt, secret
    rt.close()
