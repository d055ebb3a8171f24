"""Counts and durations: desks (``10-15``, ``approx 20``, ``up to 8``), terms, floor areas."""

from __future__ import annotations

import math
import re

from leadrelay.adapters.parsing.figures import NUMBER_WORDS, bounds, numbers_in

_TERM_UNITS = {
    "month": 1,
    "months": 1,
    "mo": 1,
    "mos": 1,
    "mth": 1,
    "mths": 1,
    "m": 1,
    "monat": 1,
    "monate": 1,
    "monaten": 1,
    "mon": 1,
    "year": 12,
    "years": 12,
    "yr": 12,
    "yrs": 12,
    "y": 12,
    "jahr": 12,
    "jahre": 12,
    "jahren": 12,
    "j": 12,
    "week": 12 / 52,
    "weeks": 12 / 52,
    "wk": 12 / 52,
    "wks": 12 / 52,
    "woche": 12 / 52,
    "wochen": 12 / 52,
    "mois": 1,
    "an": 12,
    "ans": 12,
    "année": 12,
    "années": 12,
    "semaine": 12 / 52,
    "semaines": 12 / 52,
    "maand": 1,
    "maanden": 1,
    "mnd": 1,
    "jaar": 12,
    "jaren": 12,
    "weken": 12 / 52,
    "mes": 1,
    "meses": 1,
    "año": 12,
    "años": 12,
    "semana": 12 / 52,
    "semanas": 12 / 52,
}
# "ein Jahr", "un an", "een jaar", "un año": too loose for counts
_TERM_WORDS = {**NUMBER_WORDS, "ein": 1, "eine": 1, "einem": 1, "un": 1, "une": 1, "een": 1, "uno": 1}
_TERM = re.compile(
    # (?<!\d): a number starts where its digits start; tried from every digit of a
    # long run with no unit after it, the search is quadratic
    r"((?<!\d)\d+(?:[.,]\d+)?|" + "|".join(sorted(_TERM_WORDS, key=len, reverse=True)) + r")\s*"
    r"(" + "|".join(sorted(_TERM_UNITS, key=len, reverse=True)) + r")\b",
    re.IGNORECASE,
)
_AREA_UNITS = {
    "m²": 1.0,
    "m2": 1.0,
    "sqm": 1.0,
    "sq m": 1.0,
    "sq. m": 1.0,
    "qm": 1.0,
    "square metres": 1.0,
    "square meters": 1.0,
    "quadratmeter": 1.0,
    "sq ft": 0.092903,
    "sq. ft": 0.092903,
    "sqft": 0.092903,
    "ft²": 0.092903,
    "ft2": 0.092903,
    "square feet": 0.092903,
    "square foot": 0.092903,
    "sf": 0.092903,
}
_AREA_UNIT = re.compile(
    r"(" + "|".join(re.escape(u) for u in sorted(_AREA_UNITS, key=len, reverse=True)) + r")(?![a-z])",
    re.IGNORECASE,
)


def parse_count_range(text: str) -> tuple[int | None, int | None] | None:
    """Desks or people as (min, max): ``10-15``, ``10 to 15``, ``approx 20``, ``up to 8``.

    ``up to 8`` says only the upper end, ``10+`` only the lower; the canonical model
    decides how a half-open range is stored.
    """
    numbers = list(numbers_in(text, words=True))
    if not numbers:
        return None
    low, high = bounds(numbers, text)
    return (None if low is None else round(low), None if high is None else round(high))


def parse_term_months(text: str) -> int | None:
    """A contract term in whole months: ``12 months``, ``2 years``, ``24 Monate``, ``6 mois``, ``un año``."""
    match = _TERM.search(text)
    if match:
        amount, unit = match.group(1).lower(), match.group(2).lower()
        count = _TERM_WORDS.get(amount) or float(amount.replace(",", "."))
        if not math.isfinite(count):
            return None  # hundreds of digits: no term anyone means
        return max(round(count * _TERM_UNITS[unit]), 1 if count else 0)
    bare = list(numbers_in(text))
    return round(bare[0].value) if bare else None


def parse_area_sqm(text: str) -> float | None:
    """A floor area in square metres; square feet are converted."""
    numbers = list(numbers_in(text))
    if not numbers:
        return None
    unit = _AREA_UNIT.search(text, numbers[0].end)
    factor = _AREA_UNITS[unit.group(1).lower()] if unit else 1.0
    return round(numbers[0].value * factor, 1)
