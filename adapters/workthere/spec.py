"""What Workthere's webhooks and mails look like: labels, JSON paths, events, patterns."""

from __future__ import annotations

import re

from leadrelay.adapters.parsing.languages import multilingual
from leadrelay.adapters.spec import EventTable, PortalSpec, patterns, reading_for
from leadrelay.nexudus.enums import LeadSource
from leadrelay.routing.follow_ups import FollowUpKind

LABELS = multilingual().extended(
    {
        "broker": ("consultant", "your consultant", "workthere consultant", "savills consultant"),
        "listing": ("property", "building", "property of interest"),
        "requirements.start_date": ("preferred start", "ideal start date"),
    }
)

EVENTS = EventTable(
    paths=("event", "event_type", "type"),
    handled={"lead.created": None, "enquiry.created": None, "new_lead": None, "lead": None, "enquiry": None},
    ignored=frozenset({"ping", "test"}),
    follow_ups={
        "lead.updated": FollowUpKind.updated,
        "enquiry.updated": FollowUpKind.updated,
        "viewing.booked": FollowUpKind.viewing_booked,
        "viewing.cancelled": FollowUpKind.viewing_cancelled,
        "lead.closed": FollowUpKind.withdrawn,
        "lead.withdrawn": FollowUpKind.withdrawn,
    },
)

JSON_PATHS: dict[str, tuple[str, ...]] = {
    "external_id": ("lead_reference", "reference", "lead_id", "id"),
    "kind": ("enquiry_type", "lead_type"),
    "received_at": ("submitted", "submitted_at", "created_at"),
    "contact.full_name": ("contact.name", "contact.full_name"),
    "contact.first_name": ("contact.first_name",),
    "contact.last_name": ("contact.last_name",),
    "contact.email": ("contact.email", "contact.email_address"),
    "contact.phone": ("contact.telephone", "contact.phone", "contact.mobile"),
    "contact.company": ("company_name", "contact.company", "company"),
    "requirements.workspace_type": ("workspace_type", "office_type"),
    "requirements.desks": ("number_of_desks", "desks", "team_size"),
    "requirements.budget": ("budget", "budget_range"),
    "requirements.start_date": ("preferred_start", "start_date", "move_in"),
    "requirements.term_months": ("contract_length", "term", "lease_length"),
    "requirements.area": ("location", "area", "preferred_location"),
    "listing.id": ("property.id", "property_id"),
    "listing.name": ("property.name", "property.building_name"),
    "listing.address": ("property.address",),
    "broker.name": ("agent.name", "agent.company"),
    "broker.contact": ("agent.consultant", "agent.contact", "consultant.name"),
    "broker.email": ("agent.email", "consultant.email"),
    "broker.phone": ("agent.phone", "agent.telephone", "consultant.phone"),
    "message": ("comments", "message", "notes"),
    "utm.source": ("utm_source", "tracking.utm_source"),
    "utm.medium": ("utm_medium", "tracking.utm_medium"),
    "utm.campaign": ("utm_campaign", "tracking.utm_campaign"),
}

SPEC = PortalSpec(
    name="workthere",
    lead_source=LeadSource.Workthere,
    country="GB",
    labels=LABELS,
    reading=reading_for("GB"),
    json_paths=JSON_PATHS,
    events=EVENTS,
    senders=("workthere.com", "savills.com", "savills.co.uk"),
    references=patterns(r"\b(WT-\d{4}-\d{3,})\b", flags=re.IGNORECASE),
    listing_patterns=patterns(r"\b(P-\d{3,})\b"),
    follow_up_subjects=(
        (re.compile(r"\b(lead|enquiry)\s+(update|updated)\b", re.I), FollowUpKind.updated),
        (re.compile(r"\bviewing\s+(booked|confirmed|rescheduled)\b", re.I), FollowUpKind.viewing_booked),
        (re.compile(r"\bviewing\s+cancell?ed\b", re.I), FollowUpKind.viewing_cancelled),
        (re.compile(r"\b(lead|enquiry)\s+(closed|withdrawn)\b", re.I), FollowUpKind.withdrawn),
    ),
    ignored_subjects=(
        (
            re.compile(r"\b(lead|enquiry)\s+(update|updated|closed|withdrawn)\b", re.I),
            "an update to an existing lead",
        ),
        (re.compile(r"\b(market (report|update)|newsletter|insights)\b", re.I), "a Workthere newsletter"),
    ),
    broker_name="Workthere",
)
