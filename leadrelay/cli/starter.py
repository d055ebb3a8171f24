"""What ``leadrelay init`` writes: a starter routing file from a Nexudus account's records.

One location per business with its first "new lead" column, a channel per broker
chosen, webhook secrets by ``secret_env`` (fresh values are printed, never written
here) and agent ids left as marked TODOs.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

from leadrelay.nexudus.enums import LeadSource

BROKER_SOURCES = {s.name.lower(): s for s in LeadSource if LeadSource.HubbleHq <= s <= LeadSource.Valve}
CANONICAL = "canonical"
CHANNEL_CHOICES = (*BROKER_SOURCES, CANONICAL)
_NEW_LEAD = re.compile(r"new|lead|enquir|inquir|incoming", re.IGNORECASE)
AGENT_TODO = (
    "# TODO agent_id: the Id of the Nexudus coworker that stands for this broker (the opportunity's\n"
    "    # AgentId). Find it in Nexudus: Customers, search the broker's name, open the record: the number\n"
    "    # in its address is the Id (or GET /api/spaces/coworkers?Coworker_FullName=...). Then run\n"
    "    # `leadrelay check`, which confirms it exists.\n"
    "    # agent_id: 0\n"
)


@dataclass(frozen=True)
class StarterLocation:
    name: str
    business: dict[str, Any]
    column: dict[str, Any] | None
    country: str


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 24 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def new_token() -> str:
    """A bearer token for a no-code sender (Zapier, Make, a form): 43 URL-safe characters."""
    return secrets.token_urlsafe(32)


def secret_env(channel: str, *, token: bool = False) -> str:
    kind = "TOKEN" if token else "SECRET"
    return f"{re.sub(r'[^A-Z0-9]+', '_', channel.upper())}_WEBHOOK_{kind}"


def webhook_block(channel: str, *, token: bool) -> str:
    """The channel's ``webhook:`` line: Standard Webhooks, or a bearer token for no-code senders."""
    if token:
        return f"webhook: {{scheme: token, token_env: {secret_env(channel, token=True)}}}"
    return f"webhook: {{scheme: standard-webhooks, secret_env: {secret_env(channel)}}}"


def slug(name: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "location"
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}_{n}", n + 1
    taken.add(candidate)
    return candidate


def first_new_lead_column(columns: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The first open stage named like a new lead, else the first open stage, by board and position."""
    open_ = [c for c in columns if not c.get("WinOpportunity") and not c.get("LoseOpportunity")]
    open_.sort(key=lambda c: (c.get("CrmBoardId") or 0, c.get("Position") or 0, c.get("Id") or 0))
    named = [c for c in open_ if _NEW_LEAD.search(str(c.get("Name") or ""))]
    return (named or open_)[0] if named or open_ else None


def plan_locations(
    businesses: list[dict[str, Any]],
    boards: list[dict[str, Any]],
    columns: list[dict[str, Any]],
    country_codes: dict[int, str],
) -> list[StarterLocation]:
    taken: set[str] = set()
    planned = []
    for business in sorted(businesses, key=lambda b: b.get("Id") or 0):
        board_ids = {b["Id"] for b in boards if b.get("BusinessId") == business.get("Id")}
        column = first_new_lead_column([c for c in columns if c.get("CrmBoardId") in board_ids])
        code = country_codes.get(int(business.get("CountryId") or 0), "")
        planned.append(
            StarterLocation(slug(str(business.get("Name") or "location"), taken), business, column, code)
        )
    return planned


def _q(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)  # JSON strings are YAML strings


def render(
    *,
    base_url: str,
    username: str,
    locations: list[StarterLocation],
    channels: list[str],
    tokens: frozenset[str] = frozenset(),
    schema_hint: str = "leadrelay-routing.schema.json",
) -> str:
    lines = [
        f"# yaml-language-server: $schema={schema_hint}",
        "# Written by `leadrelay init`. Check it with `leadrelay check` (docs/configuration.md).",
        "# Secrets are named by *_env: set those variables (the .env snippet init printed).",
        "accounts:",
        "  main:",
        f"    base_url: {_q(base_url)}",
        f"    username: {_q(username)}",
        "    password_env: NEXUDUS_PASSWORD",
        "locations:",
    ]
    usable = [loc for loc in locations if loc.column is not None]
    for loc in locations:
        b = loc.business
        if loc.column is None:
            lines.append(
                f"  # {loc.name}: business {b.get('Id')} has no open CRM board column: add a board first"
            )
            continue
        lines += [
            f"  {loc.name}:  # {b.get('Name')}",
            "    account: main",
            f"    business_id: {b.get('Id')}",
            f"    board_column_id: {loc.column['Id']}  # {loc.column.get('Name')}",
            *([f"    country: {loc.country}"] if re.fullmatch(r"[A-Z]{2}", loc.country) else []),
            f"    country_id: {b.get('CountryId')}",
            f"    timezone_id: {b.get('SimpleTimeZoneId')}",
            '    # listings: {hubblehq: ["48213"]}  # the portal\'s listing ids of this location',
        ]
    if not usable:
        lines[-1] = "locations: {}"
    lines.append("channels:")
    for name in channels:
        source = BROKER_SOURCES.get(name, LeadSource.Broker)
        lines += [
            f"  {name}:",
            f"    lead_source: {int(source)}  # {source.name}",
            "    " + AGENT_TODO.rstrip("\n"),
            "    " + webhook_block(name, token=name in tokens),
        ]
    if not channels:
        lines[-1] = "channels: {}"
    default = f"location: {usable[0].name}, " if usable else ""
    lines.append(f"defaults: {{{default}protection_days: 90, follow_up_hours: 24, term_months: 12}}")
    return "\n".join(lines) + "\n"
