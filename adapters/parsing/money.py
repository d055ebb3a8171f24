"""Budgets: ``£6.5k``, ``£4,000 - £6,000 pcm``, ``2.500 €``, ``$4,800/month``, ``1.200,50 EUR``.

Periods in English, German, French, Dutch and Spanish: ``pcm``, ``monatlich``,
``par mois``, ``per maand``, ``al mes``, ``p.a.``, ``par an``, ``per jaar``, ``al año``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from leadrelay.adapters.parsing.figures import Number, bounds, numbers_in

CURRENCY_SIGNS = {
    "£": "GBP",
    "€": "EUR",
    "$": "USD",
    "us$": "USD",
    "a$": "AUD",
    "c$": "CAD",
    "ca$": "CAD",
    "chf": "CHF",
    "fr.": "CHF",
    "¥": "JPY",
    "kr": "SEK",
    "zł": "PLN",
}
CURRENCY_WORDS = {
    "euro": "EUR",
    "euros": "EUR",
    "eur": "EUR",
    "pound": "GBP",
    "pounds": "GBP",
    "sterling": "GBP",
    "gbp": "GBP",
    "dollar": "USD",
    "dollars": "USD",
    "usd": "USD",
    "aud": "AUD",
    "cad": "CAD",
    "chf": "CHF",
    "sek": "SEK",
    "nok": "NOK",
    "dkk": "DKK",
    "pln": "PLN",
    "czk": "CZK",
    "sgd": "SGD",
    "hkd": "HKD",
    "jpy": "JPY",
    "inr": "INR",
    "aed": "AED",
    "zar": "ZAR",
    "nzd": "NZD",
}
PERIOD_WORDS = {
    "month": (
        "pcm",
        "p.c.m.",
        "pm",
        "p.m.",
        "p/m",
        "per month",
        "a month",
        "per calendar month",
        "monthly",
        "month",
        "months",
        "mo",
        "mth",
        "mtl",
        "mtl.",
        "monatlich",
        "monat",
        "monate",
        "pro monat",
        "im monat",
        "par mois",
        "mois",
        "mensuel",
        "mensuels",
        "mensuelle",
        "per maand",
        "maand",
        "maandelijks",
        "p/mnd",
        "mnd",
        "al mes",
        "por mes",
        "mensual",
        "mensuales",
        "/mes",
    ),
    "year": (
        "pa",
        "p.a.",
        "per annum",
        "per year",
        "a year",
        "annual",
        "annually",
        "yearly",
        "year",
        "yr",
        "jährlich",
        "jahr",
        "pro jahr",
        "im jahr",
        "par an",
        "/an",
        "annuel",
        "annuelle",
        "par année",
        "per jaar",
        "jaar",
        "jaarlijks",
        "p/j",
        "al año",
        "por año",
        "año",
        "anual",
    ),
    "week": (
        "pw",
        "p.w.",
        "per week",
        "a week",
        "weekly",
        "week",
        "wk",
        "woche",
        "wöchentlich",
        "par semaine",
        "semaine",
        "per week",
        "wekelijks",
        "a la semana",
        "por semana",
        "semana",
        "semanal",
    ),
    "day": (
        "per day",
        "a day",
        "daily",
        "day",
        "tag",
        "täglich",
        "pro tag",
        "par jour",
        "per dag",
        "al día",
        "por día",
        "día",
    ),
    "total": (
        "total",
        "in total",
        "gesamt",
        "insgesamt",
        "one-off",
        "one off",
        "au total",
        "totaal",
        "en total",
    ),
}
PER_HEAD_WORDS = (
    "per desk",
    "a desk",
    "per person",
    "per head",
    "per seat",
    "per workstation",
    "/desk",
    "/person",
    "pro arbeitsplatz",
    "pro platz",
    "pro person",
    "pro kopf",
    "par poste",
    "par personne",
    "/poste",
    "per werkplek",
    "per persoon",
    "per plek",
    "/werkplek",
    "por puesto",
    "por persona",
    "/puesto",
)
_PER_HEAD = re.compile(
    r"(?<![\w])("
    + "|".join(re.escape(w) for w in sorted(PER_HEAD_WORDS, key=len, reverse=True))
    + r")(?![\w])",
    re.IGNORECASE,
)
_PERIOD_OF = {word: period for period, words in PERIOD_WORDS.items() for word in words}
_PERIOD = re.compile(
    r"(?<![\w])(" + "|".join(re.escape(w) for w in sorted(_PERIOD_OF, key=len, reverse=True)) + r")(?![\w])",
    re.IGNORECASE,
)
_SIGN = re.compile(
    "|".join(re.escape(s) for s in sorted(CURRENCY_SIGNS, key=len, reverse=True)), re.IGNORECASE
)
_WORD = re.compile(r"\b(" + "|".join(sorted(CURRENCY_WORDS, key=len, reverse=True)) + r")\b", re.IGNORECASE)
_SYMBOLS_ONLY = re.compile(r"[£€$¥]|(?i:eur|gbp|usd|chf)")


@dataclass(frozen=True, slots=True)
class Money:
    min: float | None
    max: float | None
    currency: str | None
    period: str | None


def currency_in(text: str) -> str | None:
    """The currency a text names by sign (``£``) or code/word (``EUR``, ``Euro``)."""
    word = _WORD.search(text)
    sign = _SIGN.search(text)
    if sign and (word is None or sign.start() <= word.start()):
        return CURRENCY_SIGNS[sign.group(0).lower()]
    return CURRENCY_WORDS[word.group(1).lower()] if word else None


def period_in(text: str) -> str | None:
    """``month``, ``year``, ``week``, ``day`` or ``total`` when the text says which."""
    match = _PERIOD.search(text)
    return _PERIOD_OF[match.group(1).lower()] if match else None


def per_head(text: str) -> bool:
    """Whether an amount is per desk or per person (``£650 per desk per month``)."""
    return _PER_HEAD.search(text) is not None


def _range(numbers: list[Number], text: str) -> tuple[float | None, float | None]:
    low, high = bounds(numbers, text, noise=_SYMBOLS_ONLY)
    k_on_upper_only = len(numbers) > 1 and numbers[1].scaled and not numbers[0].scaled
    if k_on_upper_only and low is not None and high is not None and low * 1000 <= high:
        low *= 1000  # "£6-8k": the k belongs to both ends
    return low, high


def parse_money(text: str, *, default_currency: str | None = None) -> Money | None:
    """A budget range with its currency and period; None when no amount is given."""
    numbers = list(numbers_in(text))
    if not numbers:
        return None
    low, high = _range(numbers, text)
    return Money(low, high, currency_in(text) or default_currency, period_in(text))
