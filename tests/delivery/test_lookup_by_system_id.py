"""The lookup for a create whose answer was lost keys on ``SystemId`` (only the API sees it),
the Name tag staff can edit only as a fallback."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr

from leadrelay.nexudus.client import NexudusClient
from leadrelay.runtime import SANDBOX_PASSWORD, SANDBOX_USERNAME
from tests.delivery.test_exactly_once import exhaust_with_a_create_that_landed_unseen, settle
from tests.helpers import canonical, ingest, lead
from tests.sandbox.support import OPPORTUNITIES, coworker_body, opportunity_body

RENAMED = "Mei Chen - Chen Robotics, 8-10 desks (call back Tue)"


def rename(sandbox, opportunity_id: int, name: str) -> None:
    """Staff edit the Name in Nexudus (GET, change, PUT the whole record)."""
    with httpx.Client(base_url=sandbox.base_url, auth=sandbox.auth) as api:
        record = api.get(f"{OPPORTUNITIES}/{opportunity_id}").json()
        assert api.put(OPPORTUNITIES, json={**record, "Name": name}).status_code == 200


@pytest.fixture
def api(sandbox) -> Iterator[NexudusClient]:
    client = NexudusClient(
        account="main",
        base_url=sandbox.base_url,
        username=SANDBOX_USERNAME,
        password=SecretStr(SANDBOX_PASSWORD),
        timeout=5.0,
    )
    yield client
    client.close()


def test_a_resend_finds_the_opportunity_staff_renamed_meanwhile(runtime, sandbox) -> None:
    first = ingest(runtime, canonical())
    exhaust_with_a_create_that_landed_unseen(runtime, sandbox, first)
    [made] = sandbox.opportunities()
    rename(sandbox, made["Id"], RENAMED)

    resend = ingest(runtime, canonical())  # the same enquiry again: it inherits "a create was sent"
    assert settle(runtime, resend) == "delivered"

    [still] = sandbox.opportunities()
    assert (still["Id"], still["Name"]) == (made["Id"], RENAMED)
    assert lead(runtime, resend).opportunity_id == made["Id"]
    searches = [r["query"] for r in sandbox.requests() if r["method"] == "GET" and "SystemId" in r["query"]]
    assert searches, "the lookup searched by SystemId"


def test_system_id_first_then_the_name_only_for_a_record_without_one(api: NexudusClient) -> None:
    coworker = api.create_coworker(coworker_body()).value
    renamed = api.create_opportunity(opportunity_body(coworker, Name="Staff's name", SystemId="lr:a")).value
    other = api.create_opportunity(opportunity_body(coworker, Name="Broker b", SystemId="lr:other")).value
    untagged = api.create_opportunity(opportunity_body(coworker, Name="Broker c")).value
    api.create_opportunity(opportunity_body(coworker, Name="Broker x", SystemId="lr:a-longer"))

    assert api.find_opportunity("Broker a", "lr:a").value["Id"] == renamed  # not "lr:a-longer"
    assert api.find_opportunity("Broker b", "lr:b").value is None  # its Name, another enquiry's SystemId
    assert api.find_opportunity("Broker b", "lr:other").value["Id"] == other
    assert api.find_opportunity("Broker c", "lr:c").value["Id"] == untagged  # made before SystemIds
    assert api.find_opportunity("Broker d", "lr:d").value is None
