"""`leadrelay check` on a Nexudus that does not answer the list of countries or time zones
(neither is in NEXUDUS.md): their ids are reported as not checked, never as wrong."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import SecretStr

from leadrelay.nexudus import client as api
from leadrelay.nexudus.client import NexudusClient
from leadrelay.nexudus.lookups import Paced
from leadrelay.routing import parse_routing
from leadrelay.worker.config_check import _location_problems, _Lookups


class WithoutPaths(httpx.BaseTransport):
    """The real sandbox over HTTP, except ``hidden`` paths, which answer 404 as an older Nexudus would."""

    def __init__(self, hidden: tuple[str, ...]) -> None:
        self.real = httpx.HTTPTransport()
        self.hidden = hidden
        self.asked: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.asked.append(request.url.path)
        if request.url.path.startswith(self.hidden):
            return httpx.Response(404, json={"Message": "No HTTP resource was found"})
        return self.real.handle_request(request)


def lookups(sandbox: Any, transport: httpx.BaseTransport) -> _Lookups:
    client = NexudusClient(
        account="main", base_url=sandbox.base_url, username="sandbox@leadrelay.local",
        password=SecretStr("sandbox"), budget=Paced(), transport=transport,
    )  # fmt: skip
    return _Lookups(client)


def location(**changes: Any) -> Any:
    loc = {"account": "main", "business_id": 1001, "board_column_id": 2001, "country": "GB",
           "country_id": 99, "timezone_id": 999, **changes}  # fmt: skip
    routing = parse_routing({"accounts": {"main": {}}, "locations": {"x": loc}, "channels": {}}, "test")
    return routing.locations["x"]


def test_ids_of_lists_this_nexudus_does_not_answer_are_not_checked_not_wrong(sandbox: Any) -> None:
    transport = WithoutPaths((api.COUNTRIES, api.TIME_ZONES))
    look = lookups(sandbox, transport)
    try:
        problems = _location_problems("x", location(), look)
    finally:
        look.client.close()
    assert problems == []  # 99 and 999 would be wrong on the sandbox: they were not looked up
    assert set(look.unchecked) == {api.COUNTRIES, api.TIME_ZONES}
    assert f"{api.COUNTRIES}/99" not in transport.asked  # asked once whether the list exists, then left
    assert api.BUSINESSES + "/1001" in transport.asked  # the rest was checked for real


def test_where_the_lists_answer_a_wrong_id_is_still_named(sandbox: Any) -> None:
    look = lookups(sandbox, WithoutPaths(()))
    try:
        problems = _location_problems("x", location(), look)
    finally:
        look.client.close()
    assert look.unchecked == {}
    assert [p.split(":")[0] for p in problems] == ["locations.x.country_id", "locations.x.timezone_id"]
