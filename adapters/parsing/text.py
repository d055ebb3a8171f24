"""Pulling parts out of free-form values: addresses, phones, ``Name, Org (email)``, listings, kinds."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from leadrelay.adapters.parsing.labels import fold
from leadrelay.canonical import LeadKind

# An address is ``local@label(.label)*.tld``; it is found from each ``@`` outwards
# (see _address_spans), never by a regex free to start anywhere: one that may
# start in a long run of local characters retries the whole run at every
# position, which is quadratic on text with many letters and no ``@``.
_LOCAL_RUN = re.compile(r"[A-Za-z0-9._%+'\-]*+")
_DOMAIN_RUN = re.compile(r"[A-Za-z0-9\-]++(?:\.[A-Za-z0-9\-]++)*+")
_TLD = re.compile(r"[A-Za-z]{2,}+")
_PHONE = re.compile(r"(?:\+|\b00|\()?\d[\d \u00a0().\-/]{5,}\d")
_SPACE = re.compile(r"\s+")
_PARENS = re.compile(r"\(([^()]*)\)")
# An id is one whole run that holds a digit: a look-ahead checks the digit and a
# possessive run takes the rest, so a long run is read once, not split at each digit.
_LISTING_ID = re.compile(
    r"(?:[(\[]\s*+(?:#|id:?|ref:?|nr\.?:?)?\s*+([A-Za-z0-9](?=[\w\-/.]*?\d)[\w\-/.]*+|\d++)\s*+[)\]]"
    r"|#\s*+((?=[\w\-]*?\d)[\w\-]*+))\s*+$",
    re.IGNORECASE,
)
_ID_LIKE = re.compile(r"^#?([A-Za-z]{0,6}[_\-]?\d[\w\-]*+)$")
# A house number first, or a UK, German/French/Spanish or Dutch postcode: names rarely have either.
_ADDRESS_LIKE = re.compile(
    r"^\d+[a-z]?\s|\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b|\b\d{5}\s+[A-ZÄÖÜ]|\b[1-9]\d{3}\s?[A-Z]{2}\b"
)
# Spaces before a separator are taken only from where their run starts: a match
# tried inside the run would rescan the rest of it (quadratic on a long run).
_SECTIONS = re.compile(r"(?:(?<!\s)\s++)?(?:·|\||•|\u2022)\s*")

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
    ("demande de rappel", LeadKind.callback_request),
    ("etre rappele", LeadKind.callback_request),
    ("terugbel", LeadKind.callback_request),
    ("llamada", LeadKind.callback_request),
    ("demande de visite", LeadKind.viewing_request),
    ("visite", LeadKind.viewing_request),
    ("bezichtiging", LeadKind.viewing_request),
    ("visita", LeadKind.viewing_request),
    ("rondleiding", LeadKind.tour_request),
    ("demande", LeadKind.enquiry),
    ("aanvraag", LeadKind.enquiry),
    ("solicitud", LeadKind.enquiry),
    ("consulta", LeadKind.enquiry),
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
    ("bureau prive", "private_office"),
    ("bureau ferme", "private_office"),
    ("bureau d equipe", "team_office"),
    ("poste fixe", "dedicated_desk"),
    ("poste dedie", "dedicated_desk"),
    ("poste flexible", "hot_desk"),
    ("bureau flexible", "hot_desk"),
    ("salle de reunion", "meeting_room"),
    ("bureau opere", "managed_office"),
    ("domiciliation", "virtual_office"),
    ("bureau virtuel", "virtual_office"),
    ("prive kantoor", "private_office"),
    ("privekantoor", "private_office"),
    ("eigen kantoor", "private_office"),
    ("teamkantoor", "team_office"),
    ("vaste werkplek", "dedicated_desk"),
    ("flexplek", "hot_desk"),
    ("flexwerkplek", "hot_desk"),
    ("flexibele werkplek", "hot_desk"),
    ("vergaderruimte", "meeting_room"),
    ("virtueel kantoor", "virtual_office"),
    ("oficina privada", "private_office"),
    ("despacho privado", "private_office"),
    ("despacho", "private_office"),
    ("oficina de equipo", "team_office"),
    ("puesto fijo", "dedicated_desk"),
    ("puesto flexible", "hot_desk"),
    ("puesto de trabajo flexible", "hot_desk"),
    ("sala de reuniones", "meeting_room"),
    ("oficina virtual", "virtual_office"),
    ("buro", "private_office"),
    ("bureau", "private_office"),
    ("kantoor", "private_office"),
    ("oficina", "private_office"),
    ("office", "private_office"),
)


def clean(value: str) -> str:
    """One line, single spaces, no decoration around it."""
    return _SPACE.sub(" ", value.replace("\u00a0", " ")).strip().strip("*_").strip()


def _domain_length(text: str, start: int) -> int:
    """How much of ``text[start:]`` is an address's domain: labels, then a top level of 2+ letters.

    The top level may be the first letters of a label (``b.com1`` reads ``b.com``);
    the last label that can be one wins, as with a greedy regex.
    """
    run = _DOMAIN_RUN.match(text, start)
    if run is None:
        return 0
    labels = run.group(0).split(".")
    for index in range(len(labels) - 1, 0, -1):
        tld = _TLD.match(labels[index])
        if tld is not None:
            return sum(len(label) + 1 for label in labels[:index]) + tld.end()
    return 0


def _address_spans(text: str) -> Iterator[tuple[int, int]]:
    """Where the addresses in ``text`` are, left to right, in linear time.

    Each ``@`` is expanded left over local characters (no further back than the
    previous address) and right over the domain; the stretch between two ``@``
    is read at most twice, once as a domain and once as a local part.
    """
    backwards = text[::-1]
    size, previous_end = len(text), 0
    at = text.find("@")
    while at >= 0:
        run = _LOCAL_RUN.match(backwards, size - at)
        assert run is not None  # the pattern matches the empty string: it always matches
        local = run.end() - (size - at)
        start = max(at - local, previous_end)
        domain = _domain_length(text, at + 1) if start < at else 0
        if domain:
            previous_end = at + 1 + domain
            yield start, previous_end
        at = text.find("@", at + 1)


def _without_addresses(text: str) -> str:
    """``text`` with each address replaced by a space."""
    pieces, last = [], 0
    for start, end in _address_spans(text):
        pieces += [text[last:start], " "]
        last = end
    return "".join(pieces) + text[last:]


def emails_in(text: str) -> list[str]:
    return [text[start:end].strip(".'") for start, end in _address_spans(text)]


def phone_in(text: str) -> str | None:
    """The first run that looks like a phone number (7+ digits); the model makes it E.164."""
    for match in _PHONE.finditer(_without_addresses(text)):
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
    rest = _without_addresses(text)
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
