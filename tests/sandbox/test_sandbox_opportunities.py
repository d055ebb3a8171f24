"""CrmOpportunity: the documented required fields, validation, dead coworkers, the per-location
limit, full PUT, stages that win or lose, and the search filters."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from leadrelay.sandbox import SandboxHandle

from .support import OPPORTUNITIES, opportunity_body

REQUIRED = ("CrmBoardColumnId", "CoworkerId", "Status", "Position")


def create(api: httpx.Client, coworker: int, **fields: object) -> int:
    response = api.post(OPPORTUNITIES, json=opportunity_body(coworker, **fields))
    assert response.status_code == 200, response.text
    return int(response.json()["Value"]["Id"])


def names(response: httpx.Response) -> list[str]:
    return [record["Name"] for record in response.json()["Records"]]


def test_create_stores_every_field_posted(sandbox: SandboxHandle, api: httpx.Client, coworker: int) -> None:
    fields = {
        "Name": "HubbleHq enq_8F2KQ7XW",
        "LeadSource": 17,
        "AgentId": 3001,
        "ResponsibleId": 7,
        "Notes": "Desks: 8\nBudget: 4,000 GBP/month",
        "Value": 48_000.5,
        "DueDate": "2025-02-01T09:00:00+01:00",
        "SystemId": "leadrelay:lead:42",
        "UtmSource": "hubble",
    }

    response = api.post(OPPORTUNITIES, json=opportunity_body(coworker, **fields))

    assert response.status_code == 200
    assert response.json()["Message"] == "CrmOpportunity was successfully created."
    assert response.json()["Value"] == {"Id": 500001}
    stored = api.get(f"{OPPORTUNITIES}/500001").json()
    assert {key: stored[key] for key in fields} == fields | {"DueDate": "2025-02-01T08:00:00.000Z"}
    assert (stored["CoworkerId"], stored["CrmBoardColumnId"], stored["Status"]) == (coworker, 2001, 1)
    assert [o["SystemId"] for o in sandbox.opportunities()] == ["leadrelay:lead:42"]


@pytest.mark.parametrize("field", ["UtmSorce", "Unknown", "CoworkerFullName"])
def test_a_field_the_documentation_does_not_list_is_refused(
    sandbox: SandboxHandle, api: httpx.Client, coworker: int, field: str
) -> None:
    created = create(api, coworker, Name="HubbleHq enq_1", UtmSource="hubble")
    record = api.get(f"{OPPORTUNITIES}/{created}").json()

    posted = api.post(OPPORTUNITIES, json=opportunity_body(coworker, **{field: "x"}))
    put = api.put(OPPORTUNITIES, json={**record, "Notes": "edited", field: "x"})

    for response in (posted, put):
        assert response.status_code == 400
        assert response.json() == {
            "Message": f"{field}: is not a documented field of this record",
            "Value": None,
            "Errors": [
                {
                    "AttemptedValue": "x",
                    "Message": "is not a documented field of this record",
                    "PropertyName": field,
                }
            ],
            "WasSuccessful": False,
        }
    assert [(o["Id"], o["Notes"]) for o in sandbox.opportunities()] == [(created, None)]


def test_get_merge_put_round_trips_and_names_bind_ignoring_case(
    sandbox: SandboxHandle, api: httpx.Client, coworker: int
) -> None:
    created = create(api, coworker, Name="HubbleHq enq_2", Notes="first")
    record = api.get(f"{OPPORTUNITIES}/{created}").json()
    merged = {key: value for key, value in record.items() if key != "Notes"}

    put = api.put(OPPORTUNITIES, json={**merged, "UtmCampaign": "spring", "notes": "edited"})
    stored = api.get(f"{OPPORTUNITIES}/{created}").json()

    assert put.status_code == 200, put.text
    assert (stored["Notes"], stored["UtmCampaign"], stored["Name"]) == ("edited", "spring", "HubbleHq enq_2")
    assert (stored["UniqueId"], stored["CreatedOn"]) == (record["UniqueId"], record["CreatedOn"])
    assert set(stored) == set(record)


@pytest.mark.parametrize("field", REQUIRED)
def test_each_documented_required_field(
    sandbox: SandboxHandle, api: httpx.Client, coworker: int, field: str
) -> None:
    body = opportunity_body(coworker)
    del body[field]

    response = api.post(OPPORTUNITIES, json=body)

    assert response.status_code == 400
    assert response.json() == {
        "Message": f"{field}: is a required field",
        "Value": None,
        "Errors": [{"AttemptedValue": None, "Message": "is a required field", "PropertyName": field}],
        "WasSuccessful": False,
    }
    assert sandbox.opportunities() == []


@pytest.mark.parametrize(
    ("field", "value", "complaint"),
    [
        ("CrmBoardColumnId", 9999, "does not exist"),
        ("Status", 4, "is not a valid value"),
        ("Position", "first", "is not a valid value"),
        ("LeadSource", 3, "is not a valid value"),
        ("LossReason", 50, "is not a valid value"),
        ("AgentId", 424242, "does not exist"),
        ("Value", -1, "must be greater than or equal to 0"),
        ("DueDate", "next tuesday", "is not a valid date"),
    ],
)
def test_invalid_values(api: httpx.Client, coworker: int, field: str, value: object, complaint: str) -> None:
    response = api.post(OPPORTUNITIES, json=opportunity_body(coworker, **{field: value}))

    assert response.status_code == 400
    assert response.json()["Errors"] == [
        {"AttemptedValue": value, "Message": complaint, "PropertyName": field}
    ]
    assert response.json()["Message"] == f"{field}: {complaint}"


def test_every_lead_source_of_the_enum_is_accepted(api: httpx.Client, coworker: int) -> None:
    sources = [1, 2, *range(4, 27), 98, 99]

    statuses = {
        api.post(OPPORTUNITIES, json=opportunity_body(coworker, LeadSource=s)).status_code for s in sources
    }

    assert statuses == {200}


def test_a_deleted_coworker_is_access_denied(
    sandbox: SandboxHandle, api: httpx.Client, coworker: int
) -> None:
    assert sandbox.delete_coworker(coworker)

    dead = api.post(OPPORTUNITIES, json=opportunity_body(coworker))
    never = api.post(OPPORTUNITIES, json=opportunity_body(777))

    assert (dead.status_code, dead.json()) == (401, {"Message": "Access Denied"})
    assert (never.status_code, never.json()) == (401, {"Message": "Access Denied"})
    assert sandbox.opportunities() == []


def test_opportunities_per_location_are_limited(
    sandbox: SandboxHandle, api: httpx.Client, coworker: int
) -> None:
    sandbox.set_limits(location_limit=3)
    foundry = [create(api, coworker) for _ in range(3)]

    full = api.post(OPPORTUNITIES, json=opportunity_body(coworker))
    other_stage = api.post(OPPORTUNITIES, json=opportunity_body(coworker, CrmBoardColumnId=2101))
    elsewhere = api.post(OPPORTUNITIES, json=opportunity_body(coworker, CrmBoardColumnId=2002))

    assert full.status_code == 400
    assert full.json()["Message"] == "There is a limit of 3 opportunities per location: The Foundry has 3."
    assert full.json()["Errors"][0]["PropertyName"] is None
    assert other_stage.status_code == 400
    assert elsewhere.status_code == 200
    assert len(sandbox.opportunities()) == 4
    api.delete(f"{OPPORTUNITIES}/{foundry[0]}")
    assert api.post(OPPORTUNITIES, json=opportunity_body(coworker)).status_code == 200


def test_moving_into_a_full_location_is_refused(
    sandbox: SandboxHandle, api: httpx.Client, coworker: int
) -> None:
    sandbox.set_limits(location_limit=1)
    create(api, coworker)
    mission = create(api, coworker, CrmBoardColumnId=2002)
    record = api.get(f"{OPPORTUNITIES}/{mission}").json()

    moved = api.put(OPPORTUNITIES, json=record | {"CrmBoardColumnId": 2101})
    stayed = api.put(OPPORTUNITIES, json=record | {"CrmBoardColumnId": 2102})

    assert moved.status_code == 400
    assert "limit of 1 opportunities per location" in moved.json()["Message"]
    assert stayed.status_code == 200


def test_put_validates_the_whole_record(api: httpx.Client, coworker: int) -> None:
    opportunity = create(api, coworker, Name="HubbleHq enq_1")
    before = api.get(f"{OPPORTUNITIES}/{opportunity}").json()

    partial = api.put(OPPORTUNITIES, json={"Id": opportunity, "Notes": "called back"})

    assert partial.status_code == 400
    assert [error["PropertyName"] for error in partial.json()["Errors"]] == list(REQUIRED)
    assert api.get(f"{OPPORTUNITIES}/{opportunity}").json() == before

    merged = api.put(OPPORTUNITIES, json=before | {"Notes": "called back"})

    assert merged.status_code == 200
    assert merged.json()["Message"] == "CrmOpportunity was successfully updated."
    after = api.get(f"{OPPORTUNITIES}/{opportunity}").json()
    assert (after["Notes"], after["Name"]) == ("called back", "HubbleHq enq_1")
    assert (after["UniqueId"], after["CreatedOn"]) == (before["UniqueId"], before["CreatedOn"])


def test_put_of_a_dead_coworker_is_access_denied(
    sandbox: SandboxHandle, api: httpx.Client, coworker: int
) -> None:
    record = api.get(f"{OPPORTUNITIES}/{create(api, coworker)}").json()

    response = api.put(OPPORTUNITIES, json=record | {"CoworkerId": 777})

    assert (response.status_code, response.json()) == (401, {"Message": "Access Denied"})


@pytest.mark.parametrize(
    ("column", "status", "stamp"), [(2201, 2, "WonOn"), (2301, 3, "LostOn"), (2101, 1, None)]
)
def test_win_and_lose_stages_set_the_status(
    api: httpx.Client, coworker: int, column: int, status: int, stamp: str | None
) -> None:
    record = api.get(f"{OPPORTUNITIES}/{create(api, coworker, CrmBoardColumnId=column)}").json()

    assert record["Status"] == status
    assert record["Completed"] is (status != 1)
    if stamp:
        assert record[stamp] is not None


def test_the_name_filter_contains_and_ignores_case(api: httpx.Client, coworker: int) -> None:
    for name in ("HubbleHq enq_8F2KQ7XW", "HubbleHq enq_8F2KQ7XW-2", "Kontor sp_10442"):
        create(api, coworker, Name=name)

    exact_tag = api.get(OPPORTUNITIES, params={"CrmOpportunity_Name": "hubblehq ENQ_8f2kq7xw"})
    fragment = api.get(OPPORTUNITIES, params={"CrmOpportunity_Name": "sp_1"})
    nothing = api.get(OPPORTUNITIES, params={"CrmOpportunity_Name": "Workthere"})

    assert names(exact_tag) == ["HubbleHq enq_8F2KQ7XW", "HubbleHq enq_8F2KQ7XW-2"]
    assert names(fragment) == ["Kontor sp_10442"]
    assert names(nothing) == []


def test_column_coworker_status_and_created_filters(
    api: httpx.Client, new_coworker: Callable[..., int], coworker: int
) -> None:
    other = new_coworker()
    create(api, coworker, Name="a")
    create(api, other, Name="b", CrmBoardColumnId=2002)
    time.sleep(0.005)  # CreatedOn has millisecond precision: "c" must be strictly later than "b"
    later = create(api, coworker, Name="c", CrmBoardColumnId=2201)
    since = api.get(f"{OPPORTUNITIES}/{later}").json()["CreatedOn"]

    def query(**params: object) -> list[str]:
        return names(api.get(OPPORTUNITIES, params=params))

    assert query(CrmOpportunity_CrmBoardColumn=2002) == ["b"]
    assert query(CrmOpportunity_Coworker=coworker) == ["a", "c"]
    assert query(CrmOpportunity_Status=2) == ["c"]
    assert query(CrmOpportunity_Coworker=coworker, CrmOpportunity_Status=1) == ["a"]
    assert query(from_CrmOpportunity_CreatedOn=since) == ["c"]
    assert query(from_CrmOpportunity_CreatedOn="2000-01-01") == ["a", "b", "c"]
    assert query(from_CrmOpportunity_CreatedOn="2999-01-01T00:00:00Z") == []
    assert query(CrmOpportunity_CrmBoardColumn="not-a-number") == []


def test_delete(sandbox: SandboxHandle, api: httpx.Client, coworker: int) -> None:
    opportunity = create(api, coworker)

    deleted = api.delete(f"{OPPORTUNITIES}/{opportunity}")

    assert deleted.status_code == 200
    assert deleted.json()["Message"] == "CrmOpportunity was successfully deleted."
    assert api.get(f"{OPPORTUNITIES}/{opportunity}").status_code == 404
    assert api.delete(f"{OPPORTUNITIES}/{opportunity}").status_code == 404
    assert sandbox.opportunities() == []
