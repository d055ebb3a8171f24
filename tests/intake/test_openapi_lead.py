"""The canonical lead's JSON Schema is published in /openapi.json, and the samples validate against it."""

from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema_rs
import pytest

from leadrelay.api.webhooks import canonical_schemas
from leadrelay.testing.partners import PARTNERS, expected_entries, items


def lead_validator(document: dict[str, Any]) -> Any:
    """A validator for the CanonicalLead of ``document``, its ``$ref``s resolved inside the document."""
    body = document["paths"]["/webhooks/canonical"]["post"]["requestBody"]["content"]["application/json"]
    return jsonschema_rs.Draft202012Validator({**body["schema"], "components": document["components"]})


def canonical_samples() -> list[Any]:
    root = PARTNERS / "canonical" / "fixtures"
    entries = expected_entries(root)
    return [
        pytest.param(path, id=str(path.relative_to(root)))
        for path in items(root)
        if "_raises" not in entries.get(str(path.relative_to(root)), {})
    ]


@pytest.fixture
def served(
    receiver: tuple[str, Any, str],
) -> dict[str, Any]:  # /openapi.json over real HTTP, as a client generator reads it
    base, _rt, _secret = receiver
    response = httpx.get(f"{base}/openapi.json")
    assert response.status_code == 200
    return dict(response.json())


def test_the_canonical_route_refers_to_the_published_canonical_lead_schema(served: dict[str, Any]) -> None:
    body = served["paths"]["/webhooks/canonical"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/CanonicalLead"}
    lead = served["components"]["schemas"]["CanonicalLead"]
    assert "contact" in lead["required"]
    assert {"external_id", "contact", "requirements", "listing", "broker", "message", "utm"} <= set(
        lead["properties"]
    )
    for name, schema in canonical_schemas().items():  # the parts it refers to are published too
        assert served["components"]["schemas"][name] == schema
    # partner channels stay free-form (their own JSON), but documented
    partner = served["paths"]["/webhooks/{channel}"]["post"]["requestBody"]
    assert partner["content"]["application/json"]["schema"] == {"type": "object"}
    assert "CanonicalLead" in partner["description"]
    token_route = served["paths"]["/webhooks/{channel}/{token}"]["post"]
    assert "401" in token_route["responses"]


@pytest.mark.parametrize("path", canonical_samples())
def test_the_canonical_samples_validate_against_the_published_schema(
    served: dict[str, Any], path: Any
) -> None:
    errors = [error.message for error in lead_validator(served).iter_errors(json.loads(path.read_bytes()))]
    assert errors == []


def test_a_lead_without_contact_or_with_a_wrong_type_does_not_validate(served: dict[str, Any]) -> None:
    validator = lead_validator(served)
    assert not validator.is_valid({"external_id": "x"})
    assert not validator.is_valid({"contact": {"email": "a@example.com"}, "kind": "not-a-kind"})
    assert validator.is_valid({"contact": {"email": "a@example.com"}})
