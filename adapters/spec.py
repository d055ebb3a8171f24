"""What a portal adapter knows about its portal — tables only, no code.

A partner package (``adapters/hubblehq/spec.py`` …) is one :class:`PortalSpec`; the
configurable adapter builds the same thing from the routing file. The shared
engine in :mod:`adapters.portal` reads every portal through its spec.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from leadrelay.adapters.base import NotALead, ParseError
from leadrelay.adapters.parsing.labels import LabelTable, fold
from leadrelay.canonical import LeadKind
from leadrelay.routing.follow_ups import FollowUpKind


def event_key(name: str) -> str:
    """Event names compared without case or punctuation: ``enquiry.created`` = ``EnquiryCreated``."""
    return fold(name).replace(" ", "")


@dataclass(frozen=True)
class EventTable:
    """The webhook event types a portal sends: handled (with the kind they announce), follow-ups
    of an enquiry already sent (read by :mod:`adapters.events`, never a new lead) and ignored.

    A handled event mapped to ``None`` takes its kind from the payload. With no
    table at all, every payload is a lead. Any other event is a parse error, so a
    new event type shows up in the dead-letter queue instead of vanishing.
    """

    paths: tuple[str, ...] = ()
    handled: Mapping[str, LeadKind | None] = field(default_factory=dict)
    ignored: frozenset[str] = frozenset()
    follow_ups: Mapping[str, FollowUpKind] = field(default_factory=dict)

    def follow_up_for(self, event: str | None) -> FollowUpKind | None:
        """The follow-up an event type announces, or None for any other event."""
        key = None if event is None else event_key(event)
        return next((kind for name, kind in self.follow_ups.items() if event_key(name) == key), None)

    def kind_for(self, event: str | None) -> LeadKind | None:
        if event is None or not (self.handled or self.ignored or self.follow_ups):
            return None
        key = event_key(event)
        if self.follow_up_for(event) is not None:
            raise NotALead(f"event type {event!r} follows up an enquiry already sent, it is not a new lead")
        for name, kind in self.handled.items():
            if event_key(name) == key:
                return kind
        if key in {event_key(name) for name in self.ignored}:
            raise NotALead(f"event type {event!r} is not a new lead")
        raise ParseError(f"unsupported event type {event!r}")


@dataclass(frozen=True)
class Reading:
    """How a portal writes things down, for the value parsers."""

    dayfirst: bool = True
    currency: str | None = None
    period: str | None = "month"


@dataclass(frozen=True)
class PortalSpec:
    name: str
    lead_source: int
    country: str
    labels: LabelTable
    reading: Reading = field(default_factory=Reading)
    json_paths: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    events: EventTable = field(default_factory=EventTable)
    senders: tuple[str, ...] = ()
    references: tuple[re.Pattern[str], ...] = ()
    listing_patterns: tuple[re.Pattern[str], ...] = ()
    ignored_subjects: tuple[tuple[re.Pattern[str], str], ...] = ()
    # a subject it matches follows up an enquiry already sent (checked before ignored_subjects)
    follow_up_subjects: tuple[tuple[re.Pattern[str], FollowUpKind], ...] = ()
    broker_name: str | None = None
    digest_separator: re.Pattern[str] | None = None  # a line it matches starts a digest's lead block
    columns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # attached tables: field -> columns
    header_row: int = 1  # attached tables: the row that names the columns


def patterns(*sources: str, flags: int = 0) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(source, flags) for source in sources)


DAYFIRST_EXCEPT = frozenset(("US", "CA", "PH"))
CURRENCY_BY_COUNTRY = {
    "GB": "GBP",
    "US": "USD",
    "CA": "CAD",
    "AU": "AUD",
    "CH": "CHF",
    "SE": "SEK",
    "NO": "NOK",
    "DK": "DKK",
    "PL": "PLN",
    "CZ": "CZK",
    "SG": "SGD",
    "HK": "HKD",
    "JP": "JPY",
    "IN": "INR",
    "AE": "AED",
    "ZA": "ZAR",
    "NZ": "NZD",
    "IE": "EUR",
    "DE": "EUR",
    "AT": "EUR",
    "FR": "EUR",
    "NL": "EUR",
    "BE": "EUR",
    "ES": "EUR",
    "IT": "EUR",
    "PT": "EUR",
    "FI": "EUR",
    "LU": "EUR",
}


def reading_for(country: str, *, currency: str | None = None, dayfirst: bool | None = None) -> Reading:
    """The usual conventions of a country, overridable one by one."""
    return Reading(
        dayfirst=country not in DAYFIRST_EXCEPT if dayfirst is None else dayfirst,
        currency=currency or CURRENCY_BY_COUNTRY.get(country),
    )
