"""The lookup for a create whose answer was lost keys on ``SystemId`` (only the API sees it),
the Name tag staff can edit only as a fallback."""

from __future__ import annotations

import httpx

from tests.delivery.test_exactly_once import exhaust_with_a_create_that_landed_unseen, settle
from tests.helpers import canonical, ingest, lead
from tests.sandbox.support import OPPORTUNITIES

RENAMED = "Mei Chen - Chen Robotics, 8-10 desks (call back Tue)"


def rename(sandbox, opportunity_id: int, name: str) -> None:
    """Staff edit the Name in Nexudus (GET, change, PUT the whole record)."""
    with httpx.Client(base_url=sandbox.base_url, auth=sandbox.auth) as api:
        record = api.get(f"{OPPORTUNITIES}/{opportunity_id}").json()
        assert api.put(OPPORTUNITIES, json={**record, "Name": name}).status_code == 200


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
