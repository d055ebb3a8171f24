"""Coworkers: search, get, create, full PUT, delete, and the validation envelope."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import httpx
import pytest

from leadrelay.sandbox import SandboxHandle

from .support import COWORKERS, USER, coworker_body

REQUIRED = ("FullName", "Email", "CountryId", "SimpleTimeZoneId")


def test_email_search_is_exact_and_ignores_case(api: httpx.Client) -> None:
    found = api.get(COWORKERS, params={"Coworker_Email": "Brokers+HubbleHq@SANDBOX.example"}).json()
    partial = api.get(COWORKERS, params={"Coworker_Email": "brokers+hubblehq@sandbox"}).json()

    assert [record["Id"] for record in found["Records"]] == [3001]
    assert found["TotalItems"] == 1
    assert partial["Records"] == []
    assert partial["TotalItems"] == 0


def test_full_name_search_contains(api: httpx.Client) -> None:
    brokers = api.get(COWORKERS, params={"Coworker_FullName": "(BROKER)"}).json()
    kontor = api.get(COWORKERS, params={"Coworker_FullName": "kont"}).json()

    assert [record["Id"] for record in brokers["Records"]] == [3001, 3002, 3003, 3004, 3005]
    assert [record["FullName"] for record in kontor["Records"]] == ["Kontor (broker)"]


def test_location_and_number_filters(api: httpx.Client, new_coworker: Callable[..., int]) -> None:
    berliner = new_coworker(InvoicingBusinessId=1003, Businesses=[1003], CountryId=3)

    def query(**params: object) -> list[int]:
        return [record["Id"] for record in api.get(COWORKERS, params=params).json()["Records"]]

    assert query(Coworker_Businesses=1003) == [3001, 3002, 3003, 3004, 3005, berliner]
    assert query(Coworker_InvoicingBusiness=1003) == [berliner]
    assert query(Coworker_CountryId=3, Coworker_CoworkerType=1) == [berliner]
    assert query(Coworker_Unknown="ignored", Coworker_CoworkerType=2) == [3001, 3002, 3003, 3004, 3005]


def test_get_by_id(api: httpx.Client) -> None:
    found = api.get(f"{COWORKERS}/3002")
    missing = api.get(f"{COWORKERS}/424242")

    assert found.status_code == 200
    assert found.json()["Email"] == "brokers+liquidspace@sandbox.example"
    assert missing.status_code == 404
    assert "424242" in missing.json()["Message"]


def test_create_answers_the_write_envelope_and_stores_what_was_posted(api: httpx.Client) -> None:
    response = api.post(COWORKERS, json=coworker_body(MobilePhone="+44 20 7946 0000", CompanyName="Acme"))

    assert response.status_code == 200
    body = response.json()
    assert body == {
        "Status": 200,
        "Message": "Coworker was successfully created.",
        "Value": {"Id": 100001},
        "OpenInDialog": False,
        "OpenInWindow": False,
        "RedirectURL": None,
        "JavaScript": None,
        "UpdatedOn": body["UpdatedOn"],
        "UpdatedBy": USER,
        "Errors": None,
        "WasSuccessful": True,
    }
    assert datetime.fromisoformat(body["UpdatedOn"]).tzinfo is not None
    stored = api.get(f"{COWORKERS}/100001").json()
    assert stored["FullName"] == "Ada Lovelace"
    assert stored["MobilePhone"] == "+44 20 7946 0000"
    assert stored["CompanyName"] == "Acme"
    assert stored["UniqueId"]
    assert stored["CreatedOn"] == stored["UpdatedOn"]


def test_a_misspelt_field_is_refused_and_nothing_is_stored(sandbox: SandboxHandle, api: httpx.Client) -> None:
    response = api.post(COWORKERS, json=coworker_body(MobliePhone="+44 20 7946 0000", Custom={"a": 1}))

    assert response.status_code == 400
    assert response.json()["Message"] == (
        "MobliePhone: is not a documented field of this record\n"
        "Custom: is not a documented field of this record"
    )
    assert response.json()["Errors"][1] == {
        "AttemptedValue": {"a": 1},
        "Message": "is not a documented field of this record",
        "PropertyName": "Custom",
    }
    assert [c["Email"] for c in sandbox.coworkers() if c["Email"] == "ada@example.com"] == []


def test_the_validation_envelope_names_every_failure(sandbox: SandboxHandle, api: httpx.Client) -> None:
    response = api.post(COWORKERS, json={"Email": "not-an-address", "CountryId": 1})

    assert response.status_code == 400
    assert response.json() == {
        "Message": "FullName: is a required field\n"
        "Email: is not a valid email address\n"
        "SimpleTimeZoneId: is a required field",
        "Value": None,
        "Errors": [
            {"AttemptedValue": None, "Message": "is a required field", "PropertyName": "FullName"},
            {
                "AttemptedValue": "not-an-address",
                "Message": "is not a valid email address",
                "PropertyName": "Email",
            },
            {"AttemptedValue": None, "Message": "is a required field", "PropertyName": "SimpleTimeZoneId"},
        ],
        "WasSuccessful": False,
    }
    assert len(sandbox.coworkers()) == 5


@pytest.mark.parametrize("field", REQUIRED)
def test_each_required_field(api: httpx.Client, field: str) -> None:
    body = coworker_body()
    del body[field]

    response = api.post(COWORKERS, json=body)

    assert response.status_code == 400
    assert response.json()["Message"] == f"{field}: is a required field"
    assert [error["PropertyName"] for error in response.json()["Errors"]] == [field]


def test_an_email_in_use_is_refused_whatever_its_case(sandbox: SandboxHandle, api: httpx.Client) -> None:
    assert api.post(COWORKERS, json=coworker_body()).status_code == 200

    response = api.post(COWORKERS, json=coworker_body(Email="ADA@Example.com", FullName="Other Ada"))

    assert response.status_code == 400
    assert response.json()["Errors"] == [
        {"AttemptedValue": "ADA@Example.com", "Message": "is already in use", "PropertyName": "Email"}
    ]
    assert [c["FullName"] for c in sandbox.coworkers() if c["Email"].lower() == "ada@example.com"] == [
        "Ada Lovelace"
    ]


def test_without_a_location_the_coworker_lands_in_the_default_business(
    sandbox: SandboxHandle, api: httpx.Client
) -> None:
    bare = coworker_body(Email="bare@example.com")
    del bare["InvoicingBusinessId"], bare["Businesses"]
    placed = coworker_body(Email="placed@example.com", InvoicingBusinessId=1002, Businesses=[1002])

    bare_id = api.post(COWORKERS, json=bare).json()["Value"]["Id"]
    placed_id = api.post(COWORKERS, json=placed).json()["Value"]["Id"]

    landed = api.get(f"{COWORKERS}/{bare_id}").json()
    assert (landed["InvoicingBusinessId"], landed["Businesses"]) == (1001, [1001])
    kept = api.get(f"{COWORKERS}/{placed_id}").json()
    assert (kept["InvoicingBusinessId"], kept["Businesses"]) == (1002, [1002])
    assert sandbox.counters().default_business_landings == 1


@pytest.mark.parametrize(
    ("overrides", "field"),
    [({"InvoicingBusinessId": 4242}, "InvoicingBusinessId"), ({"Businesses": [1001, 4242]}, "Businesses")],
)
def test_locations_must_exist(api: httpx.Client, overrides: dict[str, object], field: str) -> None:
    response = api.post(COWORKERS, json=coworker_body(**overrides))

    assert response.status_code == 400
    assert response.json()["Errors"] == [
        {"AttemptedValue": 4242, "Message": "does not exist", "PropertyName": field}
    ]


def test_create_user_sends_a_welcome_email(sandbox: SandboxHandle, new_coworker: Callable[..., int]) -> None:
    new_coworker(CreateUser=False)
    assert sandbox.counters().welcome_emails == 0

    new_coworker(Email="welcome@example.com", CreateUser=True)

    assert sandbox.counters().welcome_emails == 1
    assert [mail["To"] for mail in sandbox.state.snapshot()["tenants"][USER]["welcome_emails"]] == [
        "welcome@example.com"
    ]


def test_put_validates_the_whole_record(api: httpx.Client, coworker: int) -> None:
    before = api.get(f"{COWORKERS}/{coworker}").json()

    partial = api.put(COWORKERS, json={"Id": coworker, "FullName": "Renamed"})

    assert partial.status_code == 400
    assert [e["PropertyName"] for e in partial.json()["Errors"]] == ["Email", "CountryId", "SimpleTimeZoneId"]
    assert api.get(f"{COWORKERS}/{coworker}").json() == before

    full = api.put(COWORKERS, json=before | {"FullName": "Renamed"})

    assert full.status_code == 200
    assert full.json()["Message"] == "Coworker was successfully updated."
    after = api.get(f"{COWORKERS}/{coworker}").json()
    assert after["FullName"] == "Renamed"
    assert (after["UniqueId"], after["CreatedOn"]) == (before["UniqueId"], before["CreatedOn"])
    assert after["UpdatedOn"] >= before["UpdatedOn"]


def test_put_refuses_another_coworkers_email(api: httpx.Client, coworker: int) -> None:
    record = api.get(f"{COWORKERS}/{coworker}").json()

    response = api.put(COWORKERS, json=record | {"Email": "brokers+kontor@sandbox.example"})

    assert response.status_code == 400
    assert response.json()["Errors"][0]["PropertyName"] == "Email"


def test_put_needs_a_known_id(api: httpx.Client) -> None:
    without = api.put(COWORKERS, json=coworker_body())
    unknown = api.put(COWORKERS, json=coworker_body(Id=424242))

    assert without.status_code == 400
    assert without.json()["Errors"] == [
        {"AttemptedValue": None, "Message": "is a required field", "PropertyName": "Id"}
    ]
    assert unknown.status_code == 404


def test_delete_frees_the_email(api: httpx.Client, coworker: int) -> None:
    email = api.get(f"{COWORKERS}/{coworker}").json()["Email"]

    deleted = api.delete(f"{COWORKERS}/{coworker}")

    assert deleted.status_code == 200
    assert deleted.json()["Message"] == "Coworker was successfully deleted."
    assert api.get(f"{COWORKERS}/{coworker}").status_code == 404
    assert api.get(COWORKERS, params={"Coworker_Email": email}).json()["Records"] == []
    assert api.delete(f"{COWORKERS}/{coworker}").status_code == 404
    assert api.post(COWORKERS, json=coworker_body(Email=email)).status_code == 200
