"""From found values to a draft lead: one interpreter per canonical field path.

Values arrive as candidates per field (from JSON paths, webhook keys or e-mail
labels), best first. Each path's interpreter turns a candidate into leaf values;
the path's own leaf is *strong*, anything it also noticed (the currency in
``£6,500``, the e-mail in ``Tom (tom@…)``) is *weak* and yields to a strong one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from leadrelay.adapters.parsing.dates import parse_date, parse_datetime
from leadrelay.adapters.parsing.labels import fold
from leadrelay.adapters.parsing.languages import region_of_labels
from leadrelay.adapters.parsing.money import currency_in, parse_money, per_head, period_in
from leadrelay.adapters.parsing.quantities import parse_area_sqm, parse_count_range, parse_term_months
from leadrelay.adapters.parsing.text import (
    clean,
    emails_in,
    kind_in,
    phone_in,
    split_listing,
    split_person,
    workspace_type,
)
from leadrelay.adapters.spec import Reading
from leadrelay.canonical import BudgetPeriod, LeadKind

Values = dict[str, Any]
Interpreter = Callable[[str, str, Reading], Values]
_TOP = (9, 0, 0)
_PER_DESK = "requirements.budget._per_desk"  # a marker, taken out by _monthly
_TO_MONTH = {"year": 1 / 12, "week": 52 / 12}


@dataclass(frozen=True, slots=True)
class Candidate:
    value: Any
    label: str
    score: tuple[int, int, int]


class Found:
    """Candidate values per canonical field path, best first."""

    def __init__(self) -> None:
        self._paths: dict[str, list[Candidate]] = {}
        self._unsorted: set[str] = set()

    def offer(self, path: str, value: Any, label: str = "", score: tuple[int, int, int] = _TOP) -> None:
        if value is None or (isinstance(value, str) and not value.strip()):
            return
        self._paths.setdefault(path, []).append(Candidate(value, label, score))
        self._unsorted.add(path)  # sorted when read: sorting at every offer is quadratic

    def has(self, path: str) -> bool:
        return path in self._paths

    def first(self, path: str) -> Any:
        return self._sorted(path)[0].value if path in self._paths else None

    def items(self) -> Iterator[tuple[str, list[Candidate]]]:
        return iter([(path, self._sorted(path)) for path in self._paths])

    def _sorted(self, path: str) -> list[Candidate]:
        candidates = self._paths[path]
        if path in self._unsorted:
            candidates.sort(key=lambda c: c.score, reverse=True)  # stable: ties keep the order offered
            self._unsorted.discard(path)
        return candidates


def as_text(value: Any) -> str:
    """Any JSON value as the text a person would have written."""
    if isinstance(value, dict):
        keys = {fold(str(k)).replace(" ", ""): v for k, v in value.items()}
        if "min" in keys or "max" in keys:
            return f"{as_text(keys.get('min', ''))} - {as_text(keys.get('max', ''))}".strip(" -")
        return " ".join(as_text(v) for v in value.values() if v is not None)
    if isinstance(value, list):
        return ", ".join(as_text(v) for v in value if v is not None)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


def _text(path: str) -> Interpreter:
    return lambda text, _label, _reading: {path: clean(text)}


def _message(text: str, _label: str, _reading: Reading) -> Values:
    return {"message": "\n".join(clean(line) for line in text.strip().splitlines()).strip()}


def _email(path: str) -> Interpreter:
    def read(text: str, _label: str, _reading: Reading) -> Values:
        found = emails_in(text)
        return {path: found[0]} if found else {}

    return read


def _phone(path: str) -> Interpreter:
    return lambda text, _label, _reading: {path: phone_in(text)}


def _person(section: str, name_key: str, organisation_key: str) -> Interpreter:
    def read(text: str, _label: str, _reading: Reading) -> Values:
        person = split_person(text)
        return {
            f"{section}.{name_key}": person.name,
            f"{section}.{organisation_key}": person.organisation,
            f"{section}.email": person.email,
            f"{section}.phone": person.phone,
        }

    return read


def _name(path: str, section: str) -> Interpreter:
    def read(text: str, _label: str, _reading: Reading) -> Values:
        if "@" not in text and "<" not in text:
            return {path: clean(text)}
        person = split_person(text)
        return {path: person.name, f"{section}.email": person.email, f"{section}.phone": person.phone}

    return read


def _desks(text: str, _label: str, _reading: Reading) -> Values:
    bounds = parse_count_range(text)
    if bounds is None:
        return {}
    return {"requirements.desks.min": bounds[0], "requirements.desks.max": bounds[1]}


def _count(path: str) -> Interpreter:
    def read(text: str, _label: str, _reading: Reading) -> Values:
        bounds = parse_count_range(text)
        return {path: bounds[0] if bounds and bounds[0] is not None else (bounds[1] if bounds else None)}

    return read


def _budget(text: str, label: str, reading: Reading) -> Values:
    money = parse_money(text)
    if money is None:
        return {}
    return {
        "requirements.budget.min": money.min,
        "requirements.budget.max": money.max,
        "requirements.budget.currency": money.currency
        or currency_in(label)
        or currency_in(fold(label))
        or reading.currency,
        "requirements.budget.period": money.period or period_in(fold(label)) or reading.period,
        _PER_DESK: per_head(text) or per_head(label) or None,
    }


def _amount(path: str) -> Interpreter:
    def read(text: str, label: str, reading: Reading) -> Values:
        values = _budget(text, label, reading)
        low, high = values.get("requirements.budget.min"), values.get("requirements.budget.max")
        values[path] = (high if path.endswith("max") else low) or low or high
        values.pop("requirements.budget.max" if path.endswith("min") else "requirements.budget.min", None)
        return values

    return read


def _currency(text: str, _label: str, _reading: Reading) -> Values:
    code = clean(text).upper()
    return {
        "requirements.budget.currency": currency_in(text)
        or (code if len(code) == 3 and code.isalpha() else None)
    }


def _period(text: str, _label: str, _reading: Reading) -> Values:
    word = fold(text)
    known = word if word in BudgetPeriod.__members__ else period_in(text)
    return {"requirements.budget.period": known}


def _date(path: str) -> Interpreter:
    return lambda text, _label, reading: {path: parse_date(text, dayfirst=reading.dayfirst)}


def _datetime(path: str) -> Interpreter:
    return lambda text, _label, reading: {path: parse_datetime(text, dayfirst=reading.dayfirst)}


def _term(text: str, _label: str, _reading: Reading) -> Values:
    return {"requirements.term_months": parse_term_months(text)}


def _area(text: str, label: str, _reading: Reading) -> Values:
    return {"requirements.size_sqm": parse_area_sqm(f"{text} {label}" if "ft" in fold(label) else text)}


def _workspace(text: str, _label: str, _reading: Reading) -> Values:
    return {"requirements.workspace_type": workspace_type(text)}


def _listing(text: str, _label: str, _reading: Reading) -> Values:
    parts = split_listing(text)
    return {"listing.id": parts.id, "listing.name": parts.name, "listing.address": parts.address}


def _listing_id(text: str, _label: str, _reading: Reading) -> Values:
    return {"listing.id": clean(text).lstrip("#").strip() or None}


def _kind(text: str, _label: str, _reading: Reading) -> Values:
    word = fold(text).replace(" ", "_")
    return {"kind": LeadKind(word) if word in LeadKind.__members__ else kind_in(text)}


INTERPRETERS: dict[str, Interpreter] = {
    "kind": _kind,
    "received_at": _datetime("received_at"),
    "viewing_at": _datetime("viewing_at"),
    "message": _message,
    "contact": _person("contact", "full_name", "company"),
    "contact.full_name": _name("contact.full_name", "contact"),
    "contact.email": _email("contact.email"),
    "contact.phone": _phone("contact.phone"),
    "requirements.desks": _desks,
    "requirements.desks.min": _count("requirements.desks.min"),
    "requirements.desks.max": _count("requirements.desks.max"),
    "requirements.budget": _budget,
    "requirements.budget.min": _amount("requirements.budget.min"),
    "requirements.budget.max": _amount("requirements.budget.max"),
    "requirements.budget.currency": _currency,
    "requirements.budget.period": _period,
    "requirements.start_date": _date("requirements.start_date"),
    "requirements.term_months": _term,
    "requirements.size_sqm": _area,
    "requirements.workspace_type": _workspace,
    "listing": _listing,
    "listing.id": _listing_id,
    "broker": _person("broker", "contact", "name"),
    "broker.contact": _name("broker.contact", "broker"),
    "broker.email": _email("broker.email"),
    "broker.phone": _phone("broker.phone"),
}


def _interpret(path: str, candidate: Candidate, reading: Reading) -> Values:
    interpret = INTERPRETERS.get(path) or _text(path)
    values = interpret(as_text(candidate.value), candidate.label, reading)
    return {k: v for k, v in values.items() if v is not None and v != ""}


def _nest(flat: Values) -> dict[str, Any]:
    draft: dict[str, Any] = {}
    for path, value in flat.items():
        *parents, leaf = path.split(".")
        node = draft
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return draft


def language_region(found: Found) -> str | None:
    """The country the found labels' language points to (a hint for national phone numbers)."""
    return region_of_labels(c.label for _, candidates in found.items() for c in candidates if c.label)


def build_draft(found: Found, reading: Reading) -> dict[str, Any]:
    """The nested draft dict :func:`adapters.base.finish` validates."""
    strong: Values = {}
    weak: Values = {}
    for path, candidates in found.items():
        for candidate in candidates:
            values = _interpret(path, candidate, reading)
            if not values:
                continue
            if path in values:
                strong.setdefault(path, values.pop(path))
            for key, value in values.items():
                weak.setdefault(key, value)
            break
    return _nest(_monthly({**weak, **strong}))


def _monthly(flat: Values) -> Values:
    """Budgets per month: a yearly or weekly amount converted, a per-desk one times the desks."""
    low, high = flat.get("requirements.budget.min"), flat.get("requirements.budget.max")
    if flat.pop(_PER_DESK, None):
        desks_low = flat.get("requirements.desks.min") or flat.get("requirements.desks.max")
        desks_high = flat.get("requirements.desks.max") or desks_low
        if desks_low and desks_high:
            low = None if low is None else low * desks_low
            high = None if high is None else high * desks_high
    factor = _TO_MONTH.get(str(flat.get("requirements.budget.period")))
    if factor is not None:
        low = None if low is None else low * factor
        high = None if high is None else high * factor
        flat["requirements.budget.period"] = "month"
    for key, value in (("requirements.budget.min", low), ("requirements.budget.max", high)):
        if value is not None:
            flat[key] = round(value, 2)
    return flat
