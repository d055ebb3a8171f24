"""Pulling parts out of free-form values: addresses, phones, ``Name, Org (email)``, listings, kinds."""

from __future__ import annotations

import re
from dataclasses import dataclass

from adapters.parsing.labels import fold
from leadrelay.canonical import LeadKind

EMAIL = re.compile(r"[A-Za-z0-9._%+'\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
_PHONE = re.compile(r"(?:\+|\b00|\()?\d[\d \u00a0().\-/]{5,}\d")
_SPACE = re.compile(r"\s+")
_PARENS = re.compile(r"\(([^()]*)\)")
_LISTING_ID = re.compile(
    r"(?:[(\[]\s*(?:#|id:?|ref:?|nr\.?:?)?\s*([A-Za-z0-9][\w\-/.]*\d[\w\-/.]*|\d+)\s*[)\]]"
    r"|#\s*([\w\-]*\d[\w\-]*))\s*$",
    re.IGNORECASE,
)
_ID_LIKE = re.compile(r"^#?([A-Za-z]{0,6}[_\-]?\d[\w\-]*)$")
# A house number first, or a UK or German postcode: names rarely have either.
_ADDRESS_LIKE = re.compile(r"^\d+[a-z]?\s|\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b|\b\d{5}\s+[A-ZÄÖÜ]")
_SECTIONS = re.compile(r"\s*(?:·|\||•|\u2022)\s*")

KIND_WORDS: tuple[tuple[str, LeadKind], ...] = (
    ("callback", LeadKind.callback_request),
    ("call back", LeadKind.callback_request),
    ("ruckruf", LeadKind.callback_request),
    ("viewing", LeadKind.viewing_request),
    ("besichtigung", LeadKind.viewing_request),
    ("tour", LeadKind.tour_request),
    ("enquiry", LeadKind.enquiry),
    ("inquiry", LeadKind.enquiry),
    ("anfrage", LeadKind.enquiry),
    ("lead", LeadKind.enquiry),
)
WORKSPACE_TYPES: tuple[tuple[str, str], ...] = (
    ("private office", "private_office"),
    ("team office", "team_office"),
    ("team room", "team_office"),
    ("hot desk", "hot_desk"),
    ("hotdesk", "hot_desk"),
    ("hot desking", "hot_desk"),
    ("flexible desk", "hot_desk"),
    ("flex desk", "hot_desk"),
    ("coworking", "hot_desk"),
    ("co working", "hot_desk"),
    ("dedicated desk", "dedicated_desk"),
    ("fixed desk", "dedicated_desk"),
    ("resident desk", "dedicated_desk"),
    ("managed office", "managed_office"),
    ("serviced office", "serviced_office"),
    ("virtual office", "virtual_office"),
    ("meeting room", "meeting_room"),
    ("event space", "event_space"),
    ("enterprise", "enterprise"),
    ("einzelburo", "private_office"),
    ("privatburo", "private_office"),
    ("teamburo", "team_office"),
    ("fester arbeitsplatz", "dedicated_desk"),
    ("fixdesk", "dedicated_desk"),
    ("flexibler arbeitsplatz", "hot_desk"),
    ("flexdesk", "hot_desk"),
    ("konferenzraum", "meeting_room"),
    ("besprechungsraum", "meeting_room"),
    ("buro", "private_office"),
    ("office", "private_office"),
)


def clean(value: str) -> str:
    """One line, single spaces, no decoration around it."""
    return _SPACE.sub(" ", value.replace("\u00a0", " ")).strip().strip("*_").strip()


def emails_in(text: str) -> list[str]:
    return [m.group(0).strip(".'") for m in EMAIL.finditer(text)]


def phone_in(text: str) -> str | None:
    """The first run that looks like a phone number (7+ digits); the model makes it E.164."""
    for match in _PHONE.finditer(EMAIL.sub(" ", text)):
        candidate = match.group(0).strip(" -./")
        if sum(ch.isdigit() for ch in candidate) >= 7:
            return candidate
    return None


@dataclass(frozen=True, slots=True)
class Person:
    name: str | None = None
    organisation: str | None = None
    email: str | None = None
    phone: str | None = None


def split_person(text: str) -> Person:
    """``Hannah Cole, Savills Workthere (hannah.cole@workthere.com)`` into its parts."""
    emails = emails_in(text)
    phone = phone_in(text)
    rest = EMAIL.sub(" ", text)
    if phone:
        rest = rest.replace(phone, " ")
    asides = [clean(a) for a in _PARENS.findall(rest) if clean(a).strip("<>[]:;, ")]
    rest = _PARENS.sub(" ", rest)
    rest = re.sub(r"[<>\[\]]|mailto:|tel:", " ", rest, flags=re.IGNORECASE)
    parts = [clean(p).strip(" -–:;") for p in re.split(r",|\s[-–|/]\s|\bat\b|\bvon\b|\bfrom\b", rest)]
    parts = [p for p in parts if p]
    name = parts[0] if parts else None
    organisation = ", ".join(parts[1:]) or (asides[0] if asides else None)
    return Person(name, organisation, emails[0] if emails else None, phone)


@dataclass(frozen=True, slots=True)
class ListingParts:
    id: str | None = None
    name: str | None = None
    address: str | None = None


def split_listing(text: str) -> ListingParts:
    """``The Foundry, Old Street (#48213)`` → name and id; an address stays an address."""
    value = clean(text)
    match = _LISTING_ID.search(value)
    listing_id = next((g for g in match.groups() if g), None) if match else None
    rest = clean(value[: match.start()]).rstrip(" ,-–:") if match else value
    if listing_id is None and (bare := _ID_LIKE.match(value)):
        return ListingParts(id=bare.group(1))
    if not rest:
        return ListingParts(id=listing_id)
    if _ADDRESS_LIKE.search(rest):
        return ListingParts(id=listing_id, address=rest)
    return ListingParts(id=listing_id, name=rest)


def kind_in(text: str) -> LeadKind | None:
    """The kind of request a subject line or event name speaks of, if any."""
    words = f" {fold(text)} "
    for word, kind in KIND_WORDS:
        if f" {word}" in words:
            return kind
    return None


def workspace_type(text: str) -> str | None:
    """A snake_case workspace type: a known one when named, else the words as given."""
    words = fold(text)
    if not words:
        return None
    for phrase, kind in WORKSPACE_TYPES:
        if re.search(rf"\b{phrase}", words):
            return kind
    return "_".join(words.split()[:4])


def sections(line: str) -> list[str]:
    """A line split where mailers join fields with ``·`` or ``|``."""
    return [part for part in _SECTIONS.split(line) if part]
