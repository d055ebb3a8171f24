"""Dates and times as portals write them, day-first where the portal is (UK, DE, FR, NL, ES).

``27/11/2026``, ``01.02.2027``, ``January 2027`` (→ the 1st), ``15 January 2027``,
``1. Februar 2027``, ``1er février 2027``, ``1 februari 2027``, ``1 de febrero de 2027``,
``Jan 15, 2027``, ``Q1 2027``, ISO 8601 with offsets, and a time
after the date (``16:45``, ``at 11:00 AM EST``, ``um 10:30 Uhr``, ``à 10h30``, ``om 10:30 uur``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, time, timedelta, timezone

MONTHS = {
    "january": 1,
    "jan": 1,
    "januar": 1,
    "jänner": 1,
    "february": 2,
    "feb": 2,
    "februar": 2,
    "march": 3,
    "mar": 3,
    "märz": 3,
    "maerz": 3,
    "mrz": 3,
    "april": 4,
    "apr": 4,
    "may": 5,
    "mai": 5,
    "june": 6,
    "jun": 6,
    "juni": 6,
    "july": 7,
    "jul": 7,
    "juli": 7,
    "august": 8,
    "aug": 8,
    "september": 9,
    "sep": 9,
    "sept": 9,
    "october": 10,
    "oct": 10,
    "oktober": 10,
    "okt": 10,
    "november": 11,
    "nov": 11,
    "december": 12,
    "dec": 12,
    "dezember": 12,
    "dez": 12,
    # French
    "janvier": 1,
    "janv": 1,
    "février": 2,
    "fevrier": 2,
    "févr": 2,
    "fevr": 2,
    "mars": 3,
    "avril": 4,
    "avr": 4,
    "juin": 6,
    "juillet": 7,
    "juil": 7,
    "août": 8,
    "aout": 8,
    "septembre": 9,
    "octobre": 10,
    "novembre": 11,
    "décembre": 12,
    "decembre": 12,
    "déc": 12,
    # Dutch
    "januari": 1,
    "februari": 2,
    "maart": 3,
    "mrt": 3,
    "mei": 5,
    "augustus": 8,
    # Spanish
    "enero": 1,
    "ene": 1,
    "febrero": 2,
    "marzo": 3,
    "abril": 4,
    "abr": 4,
    "mayo": 5,
    "junio": 6,
    "julio": 7,
    "agosto": 8,
    "ago": 8,
    "septiembre": 9,
    "setiembre": 9,
    "octubre": 10,
    "noviembre": 11,
    "diciembre": 12,
    "dic": 12,
}
ZONES = {
    "utc": 0,
    "gmt": 0,
    "z": 0,
    "bst": 1,
    "cet": 1,
    "mez": 1,
    "cest": 2,
    "mesz": 2,
    "est": -5,
    "edt": -4,
    "cst": -6,
    "cdt": -5,
    "mst": -7,
    "mdt": -6,
    "pst": -8,
    "pdt": -7,
}

_M = "(" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"
_ISO = re.compile(
    r"\b(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?\s*(Z|[+-]\d{2}:?\d{2})?"
)
_NUMERIC = re.compile(r"(?<![\d.])(\d{1,2})[./-](\d{1,2})[./-](\d{4}|\d{2})(?![\d])")
_YEAR_FIRST = re.compile(r"(?<![\d])(\d{4})[./](\d{1,2})[./](\d{1,2})(?![\d])")
# "1st of", "1. Februar", "1er février", "1 de febrero de 2027", "1º de"
_DAY_MONTH = re.compile(
    r"(?<![\d])(\d{1,2})(?:st|nd|rd|th|er|e|ème|º|°|\.)?\s+(?:of\s+|de\s+)?"
    + _M
    + r",?\s+(?:de\s+)?(\d{4})\b",
    re.I,
)
_MONTH_DAY = re.compile(r"\b" + _M + r"\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})\b", re.I)
_MONTH_YEAR = re.compile(r"\b" + _M + r",?\s+(?:de\s+)?(\d{4})\b", re.I)
_QUARTER = re.compile(r"\bQ([1-4])\s*(?:/|\s)?\s*(\d{4})\b", re.I)
_TIME = re.compile(
    r"(?<![\d])(\d{1,2})(?:[:.h](\d{2}))?\s*(am|pm|a\.m\.|p\.m\.|uhr|uur)?(?:\s*\(?([A-Z]{1,4}|[+-]\d{2}:?\d{2})\)?)?",
    re.I,
)


def _year(text: str) -> int:
    year = int(text)
    return year + 2000 if year < 100 else year


def _safe(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _numeric(match: re.Match[str], dayfirst: bool) -> date | None:
    first, second, year = int(match.group(1)), int(match.group(2)), _year(match.group(3))
    day, month = (first, second) if dayfirst else (second, first)
    if month > 12 >= day:
        day, month = month, day
    return _safe(year, month, day)


def _find_date(text: str, dayfirst: bool) -> tuple[date, int] | None:
    """The first date in ``text`` and where it ends."""
    candidates: list[tuple[int, date, int]] = []
    readers: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], date | None]], ...] = (
        (_DAY_MONTH, lambda m: _safe(_year(m.group(3)), MONTHS[m.group(2).lower()], int(m.group(1)))),
        (_MONTH_DAY, lambda m: _safe(_year(m.group(3)), MONTHS[m.group(1).lower()], int(m.group(2)))),
        (_YEAR_FIRST, lambda m: _safe(int(m.group(1)), int(m.group(2)), int(m.group(3)))),
        (_NUMERIC, lambda m: _numeric(m, dayfirst)),
        (_MONTH_YEAR, lambda m: _safe(int(m.group(2)), MONTHS[m.group(1).lower()], 1)),
        (_QUARTER, lambda m: _safe(int(m.group(2)), 3 * int(m.group(1)) - 2, 1)),
    )
    for pattern, read in readers:
        match = pattern.search(text)
        if match and (found := read(match)) is not None:
            candidates.append((match.start(), found, match.end()))
    if not candidates:
        return None
    _, found, end = min(candidates, key=lambda c: c[0])
    return found, end


def _zone(token: str | None) -> timezone | None:
    if not token:
        return None
    if token[0] in "+-":
        sign = -1 if token[0] == "-" else 1
        digits = token[1:].replace(":", "")
        return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0)))
    hours = ZONES.get(token.lower())
    return None if hours is None else timezone(timedelta(hours=hours))


def _time_after(text: str) -> tuple[time, timezone | None] | None:
    for match in _TIME.finditer(text):
        hour, minute, meridiem = int(match.group(1)), int(match.group(2) or 0), (match.group(3) or "").lower()
        if match.group(2) is None and meridiem in ("", "uhr", "uur"):
            continue  # a bare number is not a time
        if meridiem.startswith("p") and hour < 12:
            hour += 12
        elif meridiem.startswith("a") and hour == 12:
            hour = 0
        if hour < 24 and minute < 60:
            return time(hour, minute), _zone(match.group(4))
    return None


def _iso(text: str) -> datetime | None:
    match = _ISO.search(text)
    if not match:
        return None
    year, month, day, hour, minute, second, zone = match.groups()
    try:
        return datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            tzinfo=_zone(zone),
        )
    except ValueError:
        return None


def parse_date(text: str, *, dayfirst: bool = True) -> date | None:
    """The first calendar date in ``text``; None for ``ASAP``, ``flexible`` and the like."""
    iso = _iso(text)
    if iso is not None:
        return iso.date()
    found = _find_date(text, dayfirst)
    return found[0] if found else None


def parse_datetime(text: str, *, dayfirst: bool = True) -> datetime | None:
    """A date with its time (midnight when none is given) and zone when one is named."""
    iso = _iso(text)
    if iso is not None:
        return iso
    found = _find_date(text, dayfirst)
    if found is None:
        return None
    day, end = found
    clock = _time_after(text[end:])
    if clock is None:
        return datetime.combine(day, time())
    return datetime.combine(day, clock[0], tzinfo=clock[1])
