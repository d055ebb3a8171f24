"""The list envelope and paging, the seed data the demo routing needs, routing answers."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from .support import BOARDS, BUSINESSES, COLUMNS, COWORKERS


@pytest.fixture
def thirty_coworkers(new_coworker: Callable[..., int]) -> None:
    for _ in range(25):  # plus the five seeded brokers
        new_coworker()


def ids(envelope: dict[str, object]) -> list[int]:
    records = envelope["Records"]
    assert isinstance(records, list)
    return [record["Id"] for record in records]


@pytest.mark.usefixtures("thirty_coworkers")
def test_page_and_size_choose_the_page(api: httpx.Client) -> None:
    middle = api.get(COWORKERS, params={"page": 2, "size": 7}).json()
    last = api.get(COWORKERS, params={"page": 5, "size": 7}).json()

    assert ids(middle) == [100003 + n for n in range(7)]  # items 8..14: 3 001-3 005, then 100 001…
    assert {key: value for key, value in middle.items() if key != "Records"} == {
        "CurrentPage": 2,
        "CurrentPageSize": 7,
        "CurrentOrderField": "Id",
        "CurrentSortDirection": "Ascending",
        "FirstItem": 8,
        "HasNextPage": True,
        "HasPreviousPage": True,
        "LastItem": 14,
        "PageNumber": 2,
        "PageSize": 7,
        "TotalItems": 30,
        "TotalPages": 5,
    }
    assert ids(last) == [100024, 100025]
    assert (last["FirstItem"], last["LastItem"], last["HasNextPage"]) == (29, 30, False)


@pytest.mark.usefixtures("thirty_coworkers")
def test_page_number_and_page_size_are_silently_ignored(api: httpx.Client) -> None:
    envelope = api.get(COWORKERS, params={"PageNumber": 2, "PageSize": 5}).json()

    assert (envelope["CurrentPage"], envelope["PageSize"], len(envelope["Records"])) == (1, 25, 25)
    assert ids(envelope)[0] == 3001


@pytest.mark.usefixtures("thirty_coworkers")
def test_size_is_capped_and_pages_past_the_end_are_empty(api: httpx.Client) -> None:
    huge = api.get(COWORKERS, params={"size": 5000}).json()
    beyond = api.get(COWORKERS, params={"page": 99}).json()

    assert (huge["PageSize"], len(huge["Records"]), huge["TotalPages"]) == (1000, 30, 1)
    assert beyond["Records"] == []
    assert (beyond["FirstItem"], beyond["HasNextPage"], beyond["HasPreviousPage"]) == (0, False, True)


def test_order_by_and_direction(api: httpx.Client) -> None:
    envelope = api.get(COWORKERS, params={"orderBy": "FullName", "dir": "Descending"}).json()

    full_names = [record["FullName"] for record in envelope["Records"]]
    assert full_names == sorted(full_names, reverse=True)
    assert (envelope["CurrentOrderField"], envelope["CurrentSortDirection"]) == ("FullName", "Descending")


def test_seeded_locations_boards_and_columns(api: httpx.Client) -> None:
    businesses = api.get(BUSINESSES).json()["Records"]
    boards = api.get(BOARDS).json()["Records"]
    foundry_columns = api.get(COLUMNS, params={"CrmBoardColumn_CrmBoard": 1501}).json()["Records"]

    assert [(b["Id"], b["Name"]) for b in businesses] == [
        (1001, "The Foundry"),
        (1002, "Mission Hub"),
        (1003, "Spree Space"),
    ]
    assert [(b["Id"], b["BusinessId"]) for b in boards] == [(1501, 1001), (1502, 1002), (1503, 1003)]
    assert [(c["Id"], c["Name"], c["WinOpportunity"]) for c in foundry_columns] == [
        (2001, "New enquiry", False),
        (2101, "Viewing booked", False),
        (2201, "Won", True),
        (2301, "Lost", False),
    ]
    assert api.get(f"{COLUMNS}/2003").json()["CrmBoardId"] == 1503


def test_seeded_brokers_stand_for_the_agents(api: httpx.Client) -> None:
    brokers = api.get(COWORKERS, params={"Coworker_FullName": "(broker)"}).json()["Records"]

    assert [(b["Id"], b["FullName"], b["Email"]) for b in brokers] == [
        (3001, "HubbleHq (broker)", "brokers+hubblehq@sandbox.example"),
        (3002, "LiquidSpace (broker)", "brokers+liquidspace@sandbox.example"),
        (3003, "Workthere (broker)", "brokers+workthere@sandbox.example"),
        (3004, "Acme Office Search (broker)", "brokers+acme@sandbox.example"),
        (3005, "Kontor (broker)", "brokers+kontor@sandbox.example"),
    ]


def test_paths_ignore_case_and_a_final_slash(api: httpx.Client) -> None:
    assert ids(api.get("/API/Sys/Businesses/").json()) == [1001, 1002, 1003]
    assert api.get("/api/crm/CrmBoards/1501").json()["Name"] == "Leads - The Foundry"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/crm/nothing", 404),
        ("GET", "/api/spaces/coworkers/abc", 404),
        ("POST", BUSINESSES, 405),
        ("DELETE", f"{BOARDS}/1501", 405),
        ("PATCH", COWORKERS, 405),
        ("PUT", f"{COWORKERS}/3001", 405),
    ],
)
def test_unknown_routes_and_methods(api: httpx.Client, method: str, path: str, status: int) -> None:
    response = api.request(method, path, json={})

    assert response.status_code == status
    assert response.json()["Message"]
