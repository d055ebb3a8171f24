"""What kind of value a sample holds: e-mail, URL, money, date, phone, integer or text.

The type names a field when the label does not (``Reply address`` holding
``tom@x.example`` is an e-mail), and says when a label's usual meaning does not
fit what it holds.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from leadrelay.adapters.parsing.dates import parse_date
from leadrelay.adapters.parsing.money import currency_in, parse_money
from leadrelay.adapters.parsing.quantities import parse_count_range
from leadrelay.adapters.parsing.text import emails_in, phone_in

EMAIL, URL, MONEY, DATE, PHONE, INTEGER, TEXT = "e-mail", "url", "money", "date", "phone", "integer", "text"

_URL = re.compile(r"^(https?://|www\.)\S+$", re.IGNORECASE)
_PHONE_CHARS = re.compile(r"^[\d\s+()./\-]+$")
_WORDS = re.compile(r"[A-Za-z]{3,}")
_COUNT_WORDS = re.compile(
    r"^(?:(?:up to|about|approx\.?|around|between|and|to|from|max|min)\s*|[\d\s,.+\-–]+)+$", re.I
)

# the field a value of each type most likely fills when its label says nothing we know
FIELD_BY_TYPE: dict[str, str] = {
    EMAIL: "contact.email",
    PHONE: "contact.phone",
    MONEY: "requirements.budget",
    DATE: "requirements.start_date",
    INTEGER: "requirements.desks",
}

# the types a field can hold; a field missing here takes anything
FITS: dict[str, frozenset[str]] = {
    "contact.email": frozenset({EMAIL}),
    "broker.email": frozenset({EMAIL}),
    "contact.phone": frozenset({PHONE, INTEGER}),
    "broker.phone": frozenset({PHONE, INTEGER}),
    "requirements.budget": frozenset({MONEY, INTEGER, TEXT}),
    "requirements.budget.min": frozenset({MONEY, INTEGER}),
    "requirements.budget.max": frozenset({MONEY, INTEGER}),
    "requirements.desks": frozenset({INTEGER, TEXT}),
    "requirements.desks.min": frozenset({INTEGER}),
    "requirements.desks.max": frozenset({INTEGER}),
    "requirements.start_date": frozenset({DATE, TEXT}),
    "received_at": frozenset({DATE, TEXT}),
    "viewing_at": frozenset({DATE, TEXT}),
    "listing.address": frozenset({TEXT}),
    "contact.full_name": frozenset({TEXT}),
    "contact.company": frozenset({TEXT}),
}


def value_type(value: str) -> str:
    """The most specific type ``value`` reads as."""
    text = value.strip()
    if not text:
        return TEXT
    found = emails_in(text)
    if found and len(found[0]) >= len(text) * 0.5:
        return EMAIL
    if _URL.match(text):
        return URL
    if currency_in(text) and parse_money(text) is not None:
        return MONEY
    digits = sum(ch.isdigit() for ch in text)
    phone_like = _PHONE_CHARS.match(text) and digits >= 7 and phone_in(text) is not None
    if phone_like and (digits > 8 or parse_date(text) is None):
        return PHONE
    if parse_date(text) is not None:
        return DATE
    if digits and _COUNT_WORDS.match(text) and parse_count_range(text) is not None:
        return INTEGER
    if digits >= 7 and not _WORDS.search(text) and phone_in(text) is not None:
        return PHONE
    return TEXT


def common_type(values: Iterable[str]) -> str:
    """The type most of the values have (text when they disagree evenly)."""
    counts = Counter(value_type(v) for v in values)
    if not counts:
        return TEXT
    (best, n), *rest = counts.most_common()
    return TEXT if rest and rest[0][1] == n else best
