"""What HubbleHq's webhooks and mails look like: labels, JSON paths, events, patterns."""

from __future__ import annotations

import re

from leadrelay.adapters.parsing.languages import multilingual
from leadrelay.adapters.spec import EventTable, PortalSpec, patterns, reading_for
from leadrelay.nexudus.enums import LeadSource
from leadrelay.routing.follow_ups import FollowUpKind

LABELS = multilingual().extended(
    {
        "broker": ("your account manager", "hubble account manager", "hubble contact"),
        "listing": ("listing", "office listing", "hubble listing"),
        "viewing_at": ("preferred viewing", "viewing requested for"),
        "contact": ("tenant", "client"),
    }
)

EVENTS = EventTable(
    paths=("event", "type", "event_type"),
    handled={
        "enquiry.created": None,
        "viewing.requested": None,
        "viewing_request.created": None,
        "callback.requested": None,
    },
    ignored=frozenset(
        {
            "enquiry.deleted",
            "enquiry.assigned",
            "listing.updated",
            "ping",
            "test",
            "webhook.test",
        }
    ),
    follow_ups={
        "enquiry.updated": FollowUpKind.updated,
        "viewing.booked": FollowUpKind.viewing_booked,
        "viewing.confirmed": FollowUpKind.viewing_booked,
        "viewing.updated": FollowUpKind.viewing_booked,
        "viewing.cancelled": FollowUpKind.viewing_cancelled,
        "enquiry.closed": FollowUpKind.withdrawn,
        "enquiry.withdrawn": FollowUpKind.withdrawn,
    },
)

JSON_PATHS: dict[str, tuple[str, ...]] = {
    "external_id": ("enquiry.id", "enquiry.reference", "id"),
    "kind": ("enquiry.type", "enquiry.kind"),
    "received_at": ("enquiry.created_at", "sent_at", "created_at"),
    "contact.full_name": ("enquiry.client.full_name", "enquiry.client.name"),
    "contact.first_name": ("enquiry.client.first_name",),
    "contact.last_name": ("enquiry.client.last_name",),
    "contact.email": ("enquiry.client.email",),
    "contact.phone": ("enquiry.client.phone", "enquiry.client.mobile", "enquiry.client.phone_number"),
    "contact.company": ("enquiry.client.company", "enquiry.client.company_name"),
    "requirements.desks": ("enquiry.requirements.desks", "enquiry.requirements.team_size"),
    "requirements.workspace_type": (
        "enquiry.requirements.office_type",
        "enquiry.requirements.workspace_type",
    ),
    "requirements.budget": ("enquiry.requirements.budget",),
    "requirements.start_date": ("enquiry.requirements.move_in", "enquiry.requirements.start_date"),
    "requirements.term_months": ("enquiry.requirements.term_months", "enquiry.requirements.term"),
    "requirements.area": ("enquiry.requirements.area", "enquiry.requirements.location"),
    "listing.id": ("enquiry.listing.id",),
    "listing.name": ("enquiry.listing.name",),
    "listing.address": ("enquiry.listing.address",),
    "broker.contact": ("enquiry.account_manager.name",),
    "broker.email": ("enquiry.account_manager.email",),
    "broker.phone": ("enquiry.account_manager.phone",),
    "message": ("enquiry.message", "enquiry.notes"),
    "viewing_at": ("enquiry.viewing.requested_for", "enquiry.viewing.date", "enquiry.viewing.start"),
    "utm.source": ("enquiry.tracking.utm_source",),
    "utm.medium": ("enquiry.tracking.utm_medium",),
    "utm.campaign": ("enquiry.tracking.utm_campaign",),
    "utm.content": ("enquiry.tracking.utm_content",),
    "utm.term": ("enquiry.tracking.utm_term",),
}

SPEC = PortalSpec(
    name="hubblehq",
    lead_source=LeadSource.HubbleHq,
    country="GB",
    labels=LABELS,
    reading=reading_for("GB"),
    json_paths=JSON_PATHS,
    events=EVENTS,
    senders=("hubblehq.com", "hubble.com"),
    references=patterns(r"\b(enq_[A-Za-z0-9]{4,})\b"),
    # (?<!\d): the id starts where its digits start, not at each digit of a long run
    listing_patterns=patterns(r"hubblehq\.com/[\w/-]*?(?:listings?|office-space)/[\w-]*?(?<!\d)(\d{3,}+)\b"),
    follow_up_subjects=(
        (re.compile(r"\benquiry\s+updated\b", re.I), FollowUpKind.updated),
        (re.compile(r"\bviewing\s+(booked|confirmed|rescheduled)\b", re.I), FollowUpKind.viewing_booked),
        (re.compile(r"\bviewing\s+(cancelled|canceled)\b", re.I), FollowUpKind.viewing_cancelled),
        (re.compile(r"\benquiry\s+(closed|withdrawn)\b", re.I), FollowUpKind.withdrawn),
    ),
    ignored_subjects=(
        (
            re.compile(r"\b(enquiry|viewing)\s+(updated|cancelled|canceled|closed|reminder)\b", re.I),
            "an update to an existing enquiry",
        ),
        (re.compile(r"\b(weekly|monthly)\s+(summary|report|digest)\b", re.I), "a Hubble summary report"),
        (re.compile(r"\b(invoice|payment|statement)\b", re.I), "a billing message"),
    ),
    broker_name="Hubble",
)
