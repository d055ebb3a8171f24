"""The routing file: validated whole, every problem named by its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from leadrelay.routing import RoutingError, check_secrets, load_routing, parse_routing

BASE = {
    "accounts": {"main": {}},
    "locations": {
        "foundry": {
            "account": "main",
            "business_id": 1001,
            "board_column_id": 2001,
            "country_id": 1,
            "timezone_id": 52,
            "listings": {"hubblehq": ["48213"]},
            "agent_ids": {"hubblehq": 9001},
        },
        "other": {
            "account": "main",
            "business_id": 1,
            "board_column_id": 2,
            "country_id": 1,
            "timezone_id": 1,
        },
    },
    "channels": {
        "hubblehq": {"lead_source": 17, "agent_id": 3001, "webhook": {"secret_env": "HUBBLE_TEST_SECRET"}},
    },
    "defaults": {"location": "other"},
}


def problems(data: dict) -> list[str]:
    with pytest.raises(RoutingError) as caught:
        parse_routing(data, "routing.yaml")
    return caught.value.problems


def test_the_embedded_default_is_valid_and_routes_the_sample_listings() -> None:
    routing = load_routing(None)
    assert routing.location_for("kontor", "sp_10442") == "spree"
    assert routing.location_for("liquidspace", "30118") == "missionhub"
    assert routing.location_for("hubblehq", "unknown-listing") == "foundry"
    assert routing.claimed_location("hubblehq", "unknown-listing") is None


def test_listing_claims_default_location_and_per_location_agent_override() -> None:
    routing = parse_routing(BASE, "routing.yaml")
    assert routing.location_for("hubblehq", "48213") == "foundry"
    assert routing.location_for("hubblehq", "nope") == "other"
    assert routing.agent_id("hubblehq", "foundry") == 9001
    assert routing.agent_id("hubblehq", "other") == 3001


def test_errors_name_the_key() -> None:
    data = {**BASE, "channels": {"hubblehq": {"lead_source": 3, "colour": "red"}}}
    found = problems(data)
    assert "channels.hubblehq.lead_source: 3 is not a Nexudus LeadSource (see NEXUDUS.md, Enums)" in found
    assert "channels.hubblehq.colour: Extra inputs are not permitted" in found


def test_cross_references_are_checked() -> None:
    data = {
        **BASE,
        "locations": {**BASE["locations"], "bad": {**BASE["locations"]["other"], "account": "nope"}},
        "defaults": {"location": "elsewhere"},
    }
    found = problems(data)
    assert "locations.bad.account: no account named 'nope'" in found
    assert "defaults.location: no location named 'elsewhere'" in found


def test_a_listing_claimed_twice_is_refused() -> None:
    twice = {**BASE["locations"]["other"], "listings": {"hubblehq": ["48213"]}}
    found = problems({**BASE, "locations": {**BASE["locations"], "other": twice}})
    assert any("listing '48213' is also claimed" in p for p in found)


def test_missing_secret_env_is_reported_with_its_key(monkeypatch: pytest.MonkeyPatch) -> None:
    routing = parse_routing(BASE, "routing.yaml")
    monkeypatch.delenv("HUBBLE_TEST_SECRET", raising=False)
    [missing] = check_secrets(routing, parts=["webhooks"])
    assert missing.problem == (
        "channels.hubblehq.webhook.secret_env: environment variable HUBBLE_TEST_SECRET is not set"
    )
    monkeypatch.setenv("HUBBLE_TEST_SECRET", "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=")
    assert check_secrets(routing, parts=["webhooks"]) == []


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(RoutingError, match="cannot read"):
        load_routing(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("accounts: [unclosed")
    with pytest.raises(RoutingError, match="not valid YAML"):
        load_routing(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- a\n- b\n")
    with pytest.raises(RoutingError, match="YAML mapping"):
        load_routing(listy)
