"""What a twin of a delivered lead adds to its opportunity and customer: pure functions.

A twin is the same enquiry again through another door (the portal's e-mail after its
webhook). It often carries what the first lacked: the UTM fields (``Utm*`` on the
CrmOpportunity, per Nexudus's create page) and the customer's phone and company
(``MobilePhone``, ``CompanyName`` on the Coworker). A field is written only where
Nexudus still holds what leadrelay last wrote there, or nothing: a value staff
entered since is never overwritten.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from leadrelay.canonical import CanonicalLead

# Nexudus field -> (part of the canonical lead, its attribute)
OPPORTUNITY_FIELDS: dict[str, tuple[str, str]] = {
    "UtmSource": ("utm", "source"),
    "UtmMedium": ("utm", "medium"),
    "UtmCampaign": ("utm", "campaign"),
    "UtmContent": ("utm", "content"),
    "UtmTerm": ("utm", "term"),
}
COWORKER_FIELDS: dict[str, tuple[str, str]] = {
    "MobilePhone": ("contact", "phone"),
    "CompanyName": ("contact", "company"),
}


def _values(lead: CanonicalLead, fields: dict[str, tuple[str, str]]) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, (part, attribute) in fields.items():
        value = getattr(getattr(lead, part), attribute)
        if value:
            found[name] = str(value)
    return found


@dataclass(frozen=True, slots=True)
class Additions:
    """The fields a twin carries that the delivered lead lacked, by the record they go to."""

    opportunity: dict[str, str] = field(default_factory=dict)
    coworker: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.opportunity or self.coworker)


def additions(twin: CanonicalLead, delivered: CanonicalLead) -> Additions:
    """What ``twin`` says that ``delivered`` (the lead that made the opportunity) did not."""

    def new(fields: dict[str, tuple[str, str]]) -> dict[str, str]:
        had = _values(delivered, fields)
        return {name: value for name, value in _values(twin, fields).items() if name not in had}

    return Additions(opportunity=new(OPPORTUNITY_FIELDS), coworker=new(COWORKER_FIELDS))


@dataclass(frozen=True, slots=True)
class Merge:
    changes: dict[str, str]  # what to PUT
    ours: dict[str, str]  # every wanted field Nexudus holds as leadrelay's value after the PUT
    kept: tuple[str, ...]  # fields staff set since leadrelay last wrote them: left alone


def merge(record: dict[str, Any], wanted: dict[str, str], last_written: dict[str, Any]) -> Merge:
    """Which of ``wanted`` to write into ``record`` (as Nexudus holds it now).

    A field already holding the wanted value is leadrelay's (a PUT whose answer was
    lost did land); an empty one, or one still holding what leadrelay last wrote, is
    written; anything else is a staff edit and stays.
    """
    changes: dict[str, str] = {}
    ours: dict[str, str] = {}
    kept: list[str] = []
    for name, value in wanted.items():
        current = record.get(name)
        if current == value:
            ours[name] = value
        elif current in (None, "") or (name in last_written and current == last_written[name]):
            changes[name] = value
            ours[name] = value
        else:
            kept.append(name)
    return Merge(changes, ours, tuple(kept))


def last_written(entries: list[dict[str, Any]], record: str, record_id: int) -> dict[str, Any]:
    """What leadrelay last wrote to one record, from the ``written`` entries of the leads
    that enriched it (each ``{"at": …, record: {"Id": …, field: value}}``), oldest first."""
    values: dict[str, Any] = {}
    for entry in sorted(entries, key=lambda e: str(e.get("at") or "")):
        part = entry.get(record)
        if isinstance(part, dict) and part.get("Id") == record_id:
            values.update({k: v for k, v in part.items() if k != "Id"})
    return values
