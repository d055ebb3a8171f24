"""What leadrelay writes to Nexudus for a lead (DESIGN.md §4): pure functions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from leadrelay.canonical import CanonicalLead
from leadrelay.nexudus.enums import LeadSource, OpportunityStatus
from leadrelay.nexudus.mapping import value_in_currency
from leadrelay.routing import ChannelConfig, LocationConfig
from leadrelay.routing.mapping import Mapping

NAME_LIMIT = 200


@dataclass(frozen=True, slots=True)
class Route:
    """Where a lead goes: resolved from the routing file at delivery time."""

    channel: str
    channel_config: ChannelConfig
    location: str
    location_config: LocationConfig
    account: str
    agent_id: int | None
    follow_up_hours: int
    term_months: int
    mapping: Mapping = field(default_factory=Mapping)  # leadrelay.routing.mapping, resolved


def channel_label(channel: str, config: ChannelConfig) -> str:
    """``HubbleHq``, ``Kontor``… as Nexudus names the LeadSource (or the configured label)."""
    if config.label:
        return config.label
    return LeadSource(config.lead_source).name


def opportunity_name(label: str, reference: str) -> str:
    """The deterministic tag used to find an opportunity whose create went unseen."""
    return f"{label} {reference}"[:NAME_LIMIT]


def coworker_payload(lead: CanonicalLead, route: Route) -> dict[str, Any]:
    contact = lead.contact
    email = contact.email or ""
    full_name = contact.full_name or email.split("@")[0] or "Unknown"
    payload: dict[str, Any] = {
        "FullName": full_name,
        "Email": contact.email,
        "CountryId": route.location_config.country_id,
        "SimpleTimeZoneId": route.location_config.timezone_id,
        "InvoicingBusinessId": route.location_config.business_id,
        "Businesses": [route.location_config.business_id],
        "CoworkerType": 1,
        "CreateUser": False,  # True would send the customer a welcome e-mail
    }
    if contact.phone:
        payload["MobilePhone"] = contact.phone
    if contact.company:
        payload["CompanyName"] = contact.company
    return payload


def _money(amount: float) -> str:
    return f"{amount:,.0f}" if float(amount).is_integer() else f"{amount:,.2f}"


def _budget_text(lead: CanonicalLead) -> str | None:
    budget = lead.requirements.budget
    if budget is None or budget.max is None:
        return None
    span = (
        _money(budget.max)
        if budget.min in (None, budget.max)
        else f"{_money(budget.min)}–{_money(budget.max)}"
    )
    currency = f"{budget.currency} " if budget.currency else ""
    period = f" per {budget.period.value}" if budget.period else ""
    return f"{currency}{span}{period}"


def _desks_text(lead: CanonicalLead) -> str | None:
    desks = lead.requirements.desks
    if desks is None or desks.max is None:
        return None
    return str(desks.max) if desks.min == desks.max else f"{desks.min}–{desks.max}"


def notes(lead: CanonicalLead, *, label: str, lead_id: int, received_at: datetime) -> str:
    """A summary a salesperson can read at a glance."""
    req = lead.requirements
    contact = lead.contact
    lines = [f"{lead.kind.value.replace('_', ' ').capitalize()} via {label}"]
    if lead.external_id:
        lines[0] += f" (ref {lead.external_id})"
    who = ", ".join(p for p in (contact.full_name, contact.company) if p)
    reach = " · ".join(p for p in (contact.email, contact.phone) if p)
    lines.append(f"Contact: {who} — {reach}" if who else f"Contact: {reach}")
    facts = [
        ("Desks", _desks_text(lead)),
        ("Workspace", req.workspace_type.replace("_", " ") if req.workspace_type else None),
        ("Budget", _budget_text(lead)),
        ("Start", req.start_date.isoformat() if req.start_date else None),
        ("Term", f"{req.term_months} months" if req.term_months else None),
        ("Size", f"{req.size_sqm:g} m²" if req.size_sqm else None),
        ("Area", req.area),
    ]
    known = [f"{name}: {value}" for name, value in facts if value]
    if known:
        lines.append(" · ".join(known))
    if lead.listing.id or lead.listing.name:
        listing = lead.listing.name or ""
        lines.append(f"Listing: {listing} (#{lead.listing.id})" if lead.listing.id else f"Listing: {listing}")
    if lead.viewing_at:
        lines.append(f"Viewing requested for: {lead.viewing_at.isoformat()}")
    if lead.message:
        lines.append(f"Message: {lead.message}")
    broker = lead.broker
    broker_text = ", ".join(p for p in (broker.contact, broker.name, broker.email, broker.phone) if p)
    if broker_text:
        lines.append(f"Broker: {broker_text}")
    lines.append(f"Received {received_at.isoformat(timespec='minutes')} · leadrelay lead {lead_id}")
    return "\n".join(lines)


def expected_value(lead: CanonicalLead, *, default_term_months: int) -> float | None:
    """Monthly budget × term: what the opportunity is worth if won."""
    budget = lead.requirements.budget
    monthly = budget.monthly_max() if budget else None
    if monthly is None:
        return None
    if budget is not None and budget.period is not None and budget.period.value == "total":
        return round(budget.max or 0, 2)
    term = lead.requirements.term_months or default_term_months
    return round(monthly * term, 2)


def opportunity_payload(
    lead: CanonicalLead,
    route: Route,
    *,
    coworker_id: int,
    name: str,
    system_id: str,
    lead_id: int,
    received_at: datetime,
) -> dict[str, Any]:
    label = channel_label(route.channel, route.channel_config)
    payload: dict[str, Any] = {
        "Name": name,
        "SystemId": system_id,
        "CrmBoardColumnId": route.location_config.board_column_id,
        "CoworkerId": coworker_id,
        "Status": int(OpportunityStatus.InProgress),
        "Position": 1,
        "LeadSource": route.channel_config.lead_source,
        "Notes": notes(lead, label=label, lead_id=lead_id, received_at=received_at),
        "DueDate": (received_at + timedelta(hours=route.follow_up_hours)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if route.agent_id is not None:
        payload["AgentId"] = route.agent_id
    if route.location_config.responsible_id is not None:
        payload["ResponsibleId"] = route.location_config.responsible_id
    value = expected_value(lead, default_term_months=route.term_months)
    if value is not None:
        budget = lead.requirements.budget
        valued = value_in_currency(value, budget.currency if budget else None, route.mapping)
        if valued.amount is not None:
            payload["Value"] = valued.amount
        if valued.note:  # before the last line ("Received … · leadrelay lead N")
            *summary, last = payload["Notes"].split("\n")
            payload["Notes"] = "\n".join([*summary, valued.note, last])
    utm = lead.utm
    for field_name, key in (
        ("source", "UtmSource"),
        ("medium", "UtmMedium"),
        ("campaign", "UtmCampaign"),
        ("content", "UtmContent"),
        ("term", "UtmTerm"),
    ):
        if getattr(utm, field_name):
            payload[key] = getattr(utm, field_name)
    return payload


def note_marker(lead_id: int) -> str:
    """The tag that makes appending a lead's note idempotent (a retried PUT finds it)."""
    return f"[leadrelay lead {lead_id}]"


def introduction_note(
    lead: CanonicalLead,
    *,
    label: str,
    lead_id: int,
    received_at: datetime,
    first: str | None,
    heading: str = "Later introduction",
) -> str:
    """The note a later introduction (or a new enquiry of a known customer) adds to an opportunity."""
    reference = f" (ref {lead.external_id})" if lead.external_id else ""
    when = received_at.strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"{heading} via {label}{reference} on {when} {note_marker(lead_id)}"]
    if first:
        lines.append(f"First introduced by: {first}")
    broker = ", ".join(p for p in (lead.broker.contact, lead.broker.name, lead.broker.email) if p)
    if broker:
        lines.append(f"Broker: {broker}")
    if lead.message:
        lines.append(f"Message: {lead.message}")
    return "\n".join(lines)


def with_note(record: dict[str, Any], note: str) -> dict[str, Any]:
    """The whole record again (Nexudus validates PUT as a full record), its Notes extended."""
    notes = record.get("Notes") or ""
    return {**record, "Notes": f"{notes}\n\n{note}" if notes else note}
