"""What LiquidSpace's webhooks and mails look like: labels, JSON paths, events, patterns."""

from __future__ import annotations

import re

from leadrelay.adapters.parsing.languages import multilingual
from leadrelay.adapters.spec import EventTable, PortalSpec, patterns, reading_for
from leadrelay.canonical import LeadKind
from leadrelay.nexudus.enums import LeadSource
from leadrelay.routing.follow_ups import FollowUpKind

LABELS = multilingual().extended(
    {
        "contact": ("member", "liquidspace member", "requested by"),
        "listing": ("venue", "location"),
        "requirements.workspace_type": ("workspace", "space", "workspace requested"),
        "viewing_at": ("requested tour", "tour time", "preferred tour time", "tour date"),
        "requirements.term_months": ("estimated term", "term length"),
    }
)

EVENTS = EventTable(
    paths=("EventType", "Type", "Event"),
    handled={
        "TourRequested": LeadKind.tour_request,
        "InquiryCreated": LeadKind.enquiry,
        "InquirySubmitted": LeadKind.enquiry,
        "LeadCreated": LeadKind.enquiry,
        "CallbackRequested": LeadKind.callback_request,
    },
    ignored=frozenset(
        {
            "TourCompleted",
            "ReservationCreated",
            "ReservationCancelled",
            "Ping",
            "Test",
        }
    ),
    follow_ups={
        "InquiryUpdated": FollowUpKind.updated,
        "TourBooked": FollowUpKind.viewing_booked,
        "TourConfirmed": FollowUpKind.viewing_booked,
        "TourRescheduled": FollowUpKind.viewing_booked,
        "TourCancelled": FollowUpKind.viewing_cancelled,
        "InquiryClosed": FollowUpKind.withdrawn,
        "InquiryWithdrawn": FollowUpKind.withdrawn,
    },
)

_ROOT = "*"  # TourRequest, Inquiry, Lead…: one object per event type
JSON_PATHS: dict[str, tuple[str, ...]] = {
    "external_id": (f"{_ROOT}.Id", f"{_ROOT}.TourRequestId", f"{_ROOT}.InquiryId"),
    "received_at": ("OccurredOn", f"{_ROOT}.CreatedOn"),
    "contact.full_name": (f"{_ROOT}.Member.FullName", f"{_ROOT}.Member.Name"),
    "contact.first_name": (f"{_ROOT}.Member.FirstName",),
    "contact.last_name": (f"{_ROOT}.Member.LastName",),
    "contact.email": (f"{_ROOT}.Member.Email", f"{_ROOT}.Member.EmailAddress"),
    "contact.phone": (f"{_ROOT}.Member.PhoneNumber", f"{_ROOT}.Member.Phone", f"{_ROOT}.Member.MobilePhone"),
    "contact.company": (f"{_ROOT}.Member.CompanyName", f"{_ROOT}.Member.Company"),
    "listing.id": (f"{_ROOT}.Venue.VenueId", f"{_ROOT}.Venue.Id"),
    "listing.name": (f"{_ROOT}.Venue.Name",),
    "listing.address": (f"{_ROOT}.Venue.Address",),
    "requirements.workspace_type": (f"{_ROOT}.Workspace.Type", f"{_ROOT}.WorkspaceType"),
    "requirements.desks": (f"{_ROOT}.TeamSize", f"{_ROOT}.Capacity", f"{_ROOT}.Seats"),
    "requirements.term_months": (f"{_ROOT}.EstimatedTermMonths", f"{_ROOT}.TermMonths"),
    "requirements.start_date": (f"{_ROOT}.MoveInDate", f"{_ROOT}.StartDate"),
    "requirements.budget.max": (f"{_ROOT}.MonthlyBudget", f"{_ROOT}.Budget"),
    "requirements.budget.currency": (f"{_ROOT}.Currency",),
    "viewing_at": (f"{_ROOT}.PreferredTourTime", f"{_ROOT}.TourTime"),
    "message": (f"{_ROOT}.Message", f"{_ROOT}.Notes"),
}

SPEC = PortalSpec(
    name="liquidspace",
    lead_source=LeadSource.LiquidSpace,
    country="US",
    labels=LABELS,
    reading=reading_for("US"),
    json_paths=JSON_PATHS,
    events=EVENTS,
    senders=("liquidspace.com",),
    references=patterns(
        r"(?i)\b(?:tour|inquiry|enquiry|request|lead|visite|demande|rondleiding|aanvraag|visita|solicitud"
        r"|besichtigung|anfrage)(?:\s+request)?\s*(?:#|no\.?|n°|nr\.?|number|id:?)\s*(\d{4,})",
        r"liquidspace\.com/[\w/]*?(?:tours|inquiries|requests)/(\d{4,})",
        r"\b(?:tour|inquiry)-(\d{4,})@",
    ),
    listing_patterns=patterns(
        r"(?i)\b(?:venue|lieu|espace|locatie|centro|espacio|standort)\b[^()\n]{0,80}\((?:id:?\s*)?(\d{3,})\)"
    ),
    follow_up_subjects=(
        (re.compile(r"\binquiry\s+updated\b", re.I), FollowUpKind.updated),
        (re.compile(r"\btour\s+(booked|confirmed|rescheduled)\b", re.I), FollowUpKind.viewing_booked),
        (re.compile(r"\btour\s+cancell?ed\b", re.I), FollowUpKind.viewing_cancelled),
        (re.compile(r"\binquiry\s+(closed|withdrawn)\b", re.I), FollowUpKind.withdrawn),
    ),
    ignored_subjects=(
        (
            re.compile(r"\btour\s+(cancell?ed|confirmed|rescheduled|reminder)\b", re.I),
            "an update to an existing tour",
        ),
        (
            re.compile(r"\b(reservation|booking)\s+(confirmed|cancell?ed|receipt)\b", re.I),
            "a reservation notice",
        ),
        (re.compile(r"\b(payout|invoice|receipt)\b", re.I), "a billing message"),
    ),
    broker_name="LiquidSpace",
)
