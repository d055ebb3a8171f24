"""Paths, logins and request bodies the sandbox tests share."""

from __future__ import annotations

from typing import Any

from leadrelay.sandbox import DEFAULT_PASSWORD, DEFAULT_USERNAME

USER, PASSWORD = DEFAULT_USERNAME, DEFAULT_PASSWORD
TOKEN = "/api/token"
COWORKERS = "/api/spaces/coworkers"
OPPORTUNITIES = "/api/crm/crmopportunities"
BUSINESSES = "/api/sys/businesses"
BOARDS = "/api/crm/crmboards"
COLUMNS = "/api/crm/crmboardcolumns"
DENIED = {"Message": "Authorization has been denied for this request."}


def coworker_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "FullName": "Ada Lovelace",
        "Email": "ada@example.com",
        "CountryId": 1,
        "SimpleTimeZoneId": 52,
        "InvoicingBusinessId": 1001,
        "Businesses": [1001],
        "CreateUser": False,
    }
    return body | overrides


def opportunity_body(coworker_id: int, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"CrmBoardColumnId": 2001, "CoworkerId": coworker_id, "Status": 1, "Position": 1}
    return body | overrides
