"""What Kontor's webhooks and mails look like: labels, JSON paths, events, patterns."""

from __future__ import annotations

import re

from leadrelay.adapters.parsing.languages import multilingual
from leadrelay.adapters.spec import EventTable, PortalSpec, patterns, reading_for
from leadrelay.nexudus.enums import LeadSource
from leadrelay.routing.follow_ups import FollowUpKind

LABELS = multilingual(german_first=True).extended(
    {
        "listing": ("objekt", "space", "fläche", "angefragtes objekt", "büro"),
        "broker": ("ihr kontor team", "kontor ansprechpartner", "agent"),
        "requirements.budget": ("budget eur monat", "budget monat", "budget pro monat"),
    }
)

EVENTS = EventTable(
    paths=("data.type", "meta.event", "event"),
    handled={"leads": None, "lead": None, "lead.created": None, "anfrage": None},
    ignored=frozenset({"lead.deleted", "lead.archived", "ping", "pings", "test", "spaces", "space.updated"}),
    follow_ups={
        "lead.updated": FollowUpKind.updated,
        "viewing.booked": FollowUpKind.viewing_booked,
        "besichtigung.gebucht": FollowUpKind.viewing_booked,
        "viewing.cancelled": FollowUpKind.viewing_cancelled,
        "besichtigung.storniert": FollowUpKind.viewing_cancelled,
        "lead.withdrawn": FollowUpKind.withdrawn,
        "lead.closed": FollowUpKind.withdrawn,
    },
)

_A = "data.attributes"
JSON_PATHS: dict[str, tuple[str, ...]] = {
    "external_id": ("data.id",),
    "kind": (f"{_A}.lead-type", f"{_A}.kind", f"{_A}.request-type"),
    "received_at": (f"{_A}.created-at", "meta.sent-at"),
    "contact.full_name": (f"{_A}.contact-name", f"{_A}.name"),
    "contact.first_name": (f"{_A}.contact-first-name", f"{_A}.first-name"),
    "contact.last_name": (f"{_A}.contact-last-name", f"{_A}.last-name"),
    "contact.email": (f"{_A}.contact-email", f"{_A}.email"),
    "contact.phone": (f"{_A}.contact-phone", f"{_A}.phone", f"{_A}.contact-mobile"),
    "contact.company": (f"{_A}.company", f"{_A}.company-name"),
    "requirements.area": (f"{_A}.city", f"{_A}.district", f"{_A}.area"),
    "requirements.desks": (f"{_A}.desks",),
    "requirements.desks.min": (f"{_A}.desks-min",),
    "requirements.desks.max": (f"{_A}.desks-max",),
    "requirements.size_sqm": (f"{_A}.size-sqm",),
    "requirements.budget": (f"{_A}.budget-eur-month", f"{_A}.budget"),
    "requirements.start_date": (f"{_A}.start-date", f"{_A}.move-in"),
    "requirements.term_months": (f"{_A}.lease-term-months", f"{_A}.term-months"),
    "requirements.workspace_type": (f"{_A}.workspace-type", f"{_A}.space-type"),
    "listing.id": ("data.relationships.space.data.id",),
    "listing.name": ("data.relationships.space.data.meta.name",),
    "broker.contact": ("data.relationships.agent.data.meta.name",),
    "broker.email": ("data.relationships.agent.data.meta.email",),
    "message": (f"{_A}.message", f"{_A}.nachricht"),
}

SPEC = PortalSpec(
    name="kontor",
    lead_source=LeadSource.Kontor,
    country="DE",
    labels=LABELS,
    reading=reading_for("DE"),
    json_paths=JSON_PATHS,
    events=EVENTS,
    senders=("kontor.com", "kontor.de"),
    references=patterns(r"\b(ktr_[0-9a-z]{4,})\b", flags=re.IGNORECASE),
    listing_patterns=patterns(r"\b(sp_\d{3,})\b"),
    follow_up_subjects=(
        (re.compile(r"\b(anfrage|lead)\s+aktualisiert\b", re.I), FollowUpKind.updated),
        (re.compile(r"\bbesichtigung\s+(gebucht|bestätigt|verschoben)\b", re.I), FollowUpKind.viewing_booked),
        (re.compile(r"\bbesichtigung\s+(storniert|abgesagt)\b", re.I), FollowUpKind.viewing_cancelled),
        (
            re.compile(r"\b(anfrage|lead)\s+(storniert|zurückgezogen|geschlossen)\b", re.I),
            FollowUpKind.withdrawn,
        ),
    ),
    ignored_subjects=(
        (
            re.compile(r"\b(anfrage|lead)\s+(aktualisiert|storniert|geschlossen|archiviert)\b", re.I),
            "an update to an existing enquiry",
        ),
        (re.compile(r"\b(rechnung|newsletter|marktbericht)\b", re.I), "an invoice or newsletter"),
    ),
    broker_name="Kontor",
)
