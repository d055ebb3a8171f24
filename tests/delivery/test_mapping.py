"""Configurable mapping per account, location and channel: the Name template, the column per
channel, the DueDate offset and Value in the location's currency (a configured table)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import pytest
import yaml

from leadrelay.routing import Routing, RoutingError, parse_routing
from leadrelay.runtime import Runtime
from leadrelay.worker.pipeline import process
from tests.conftest import UNTHROTTLED, sandbox_settings
from tests.helpers import canonical, ingest

RECEIVED = datetime(2026, 11, 27, 12, tzinfo=UTC)  # the canonical sample's own time


def routing_data() -> dict[str, Any]:
    data = yaml.safe_load(resources.files("leadrelay").joinpath("default_routing.yaml").read_text())
    data["accounts"]["main"] = {"limits": UNTHROTTLED}
    return data


def mapped_routing() -> Routing:
    data = routing_data()
    data["defaults"]["mapping"] = {"currency_rates": {"GBP": 1, "EUR": 0.85, "USD": 0.8}}
    data["accounts"]["main"]["mapping"] = {"name_template": "{label} {reference}", "follow_up_hours": 72}
    data["channels"]["canonical"]["mapping"] = {
        "name_template": "{label} {reference} - {kind} at {location}",
        "follow_up_hours": 48,
    }
    data["channels"]["hubblehq"]["mapping"] = {"follow_up_hours": 4}
    foundry = data["locations"]["foundry"]
    foundry["mapping"] = {"currency": "GBP"}
    foundry["by_channel"] = {"canonical": {"board_column_id": 2101}}
    data["locations"]["missionhub"]["mapping"] = {"currency": "USD"}
    return parse_routing(data, "test routing")


@pytest.fixture
def mapped(clean_db: str, sandbox: Any) -> Iterator[Runtime]:
    rt = Runtime.load(sandbox_settings(clean_db, sandbox, budget_wait_seconds=1.0), mapped_routing())
    yield rt
    rt.close()


def euro_lead(**changes: Any) -> dict[str, Any]:
    body = canonical(**changes)
    body["requirements"]["budget"] = {"amount": 5000, "currency": "EUR", "period": "month"}
    return body


def test_the_channel_at_the_location_sets_name_column_and_due_date(mapped: Runtime, sandbox) -> None:
    assert process(mapped, ingest(mapped, euro_lead()), owner="w") == "delivered"

    [opportunity] = sandbox.opportunities()
    assert opportunity["Name"] == "Broker zap-000193 - enquiry at foundry"
    assert opportunity["CrmBoardColumnId"] == 2101  # foundry × canonical, not the location's 2001
    assert datetime.fromisoformat(opportunity["DueDate"]) == RECEIVED + timedelta(hours=48)
    assert opportunity["SystemId"] == "leadrelay:canonical:zap-000193"


def test_a_budget_in_another_currency_is_converted_and_the_original_kept(mapped: Runtime, sandbox) -> None:
    assert process(mapped, ingest(mapped, euro_lead()), owner="w") == "delivered"

    [opportunity] = sandbox.opportunities()
    assert opportunity["Value"] == 51_000  # EUR 5,000 a month × 12 months × 0.85
    notes = opportunity["Notes"].splitlines()
    assert "Budget: EUR 5,000 per month" in opportunity["Notes"]
    assert notes[-2] == "Value: GBP 51,000, from EUR 60,000 at 0.85"
    assert notes[-1].endswith("leadrelay lead 1")


def test_a_currency_without_a_rate_leaves_value_for_staff(mapped: Runtime, sandbox) -> None:
    body = euro_lead()
    body["requirements"]["budget"]["currency"] = "CHF"

    assert process(mapped, ingest(mapped, body), owner="w") == "delivered"

    [opportunity] = sandbox.opportunities()
    assert opportunity["Value"] is None
    assert "Value not set: CHF 60,000 expected, and no rate from CHF to GBP" in opportunity["Notes"]


def test_the_locations_own_currency_needs_no_rate(mapped: Runtime, sandbox) -> None:
    body = euro_lead(external_id="zap-000200")
    body["requirements"]["budget"]["currency"] = "GBP"

    assert process(mapped, ingest(mapped, body), owner="w") == "delivered"

    [opportunity] = sandbox.opportunities()
    assert opportunity["Value"] == 60_000
    assert "Value:" not in opportunity["Notes"]


def test_nearest_level_wins(mapped: Runtime, sandbox) -> None:
    """hubblehq: its channel's 4 h over the account's 72 h; the account's Name template."""
    hook = json.dumps(
        {
            "event": "enquiry.created",
            "enquiry": {
                "id": "enq_MAP1",
                "created_at": "2026-11-27T12:00:00Z",
                "client": {"first_name": "Ada", "last_name": "L", "email": "ada@map.example"},
                "requirements": {"budget": {"amount": 1000, "currency": "USD", "period": "month"}},
                "listing": {"id": 48213},
            },
        }
    ).encode()

    assert process(mapped, ingest(mapped, hook, channel="hubblehq"), owner="w") == "delivered"

    [opportunity] = sandbox.opportunities()
    assert opportunity["Name"] == "HubbleHq enq_MAP1"
    assert opportunity["CrmBoardColumnId"] == 2001
    assert datetime.fromisoformat(opportunity["DueDate"]) == RECEIVED + timedelta(hours=4)
    assert opportunity["Value"] == 9_600  # USD 12,000 × 0.8


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (
            lambda d: d["channels"]["canonical"].update(mapping={"board_column_id": 2101}),
            "channels.canonical.mapping.board_column_id: a column belongs to one location's board",
        ),
        (
            lambda d: d["defaults"].update(mapping={"name_template": "{label} {client}"}),
            "unknown field {client}",
        ),
        (
            lambda d: d["defaults"].update(mapping={"name_template": "{label}"}),
            "must hold {reference}",
        ),
        (
            lambda d: d["defaults"].update(mapping={"currency_rates": {"EURO": 1}}),
            "'EURO' is not a currency code",
        ),
        (
            lambda d: d["locations"]["foundry"].update(by_channel={"nowhere": {"board_column_id": 1}}),
            "locations.foundry: names channel 'nowhere', which is not configured",
        ),
    ],
)
def test_a_mapping_that_cannot_work_is_refused_at_load(change: Any, complaint: str) -> None:
    data = routing_data()
    change(data)
    with pytest.raises(RoutingError) as raised:
        parse_routing(data, "test routing")
    assert complaint in str(raised.value)
