"""Numbers as people write them: ``4,000``, ``2.500`` (German thousands), ``1.200,50``, ``3 000``, ``6k``."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass

# French and Spanish group thousands with a space (``3 000``, ``12 500,50``): taken
# only as whole groups of three, so ``8 10`` stays two numbers. Each group checks
# its own end, so a run is never rescanned from a later start (linear time).
_TOKEN = re.compile(
    r"(?<![\w.,])(\d{1,3}(?:[ \u00a0\u202f]\d{3}(?!\d))++(?:,\d{1,2}(?!\d))?|\d+(?:[.,'’\u202f]\d+)*)"
    r"(?:\s?([kKmM])\b)?"
)
NUMBER_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "fifteen": 15,
    "twenty": 20,
    "zwei": 2,
    "drei": 3,
    "vier": 4,
    "fünf": 5,
    "sechs": 6,
    "sieben": 7,
    "acht": 8,
    "neun": 9,
    "zehn": 10,
    "zwölf": 12,
    "deux": 2,
    "trois": 3,
    "quatre": 4,
    "cinq": 5,
    "huit": 8,
    "neuf": 9,
    "dix": 10,
    "douze": 12,
    "twee": 2,
    "drie": 3,
    "vijf": 5,
    "zes": 6,
    "zeven": 7,
    "negen": 9,
    "tien": 10,
    "twaalf": 12,
    "dos": 2,
    "tres": 3,
    "cuatro": 4,
    "cinco": 5,
    "seis": 6,
    "siete": 7,
    "ocho": 8,
    "nueve": 9,
    "diez": 10,
    "doce": 12,
}
_WORD_TOKEN = re.compile(
    r"\b(" + "|".join(sorted(NUMBER_WORDS, key=len, reverse=True)) + r")\b", re.IGNORECASE
)
_MULTIPLIERS = {"k": 1_000, "m": 1_000_000}
_RANGE_GAP = re.compile(
    r"^\s*(?:-|–|—|to|bis|and|und|or|oder|/|à|a|et|ou|tot|en|of|y|o|hasta)\s*$", re.IGNORECASE
)
_UPPER_ONLY = re.compile(
    r"\b(up to|upto|max(?:imum)?|under|below|fewer than|less than|no more than"
    r"|bis(?: zu)?|höchstens|maximal"
    r"|jusqu['’] ?à|au plus|au maximum|maxi|moins de|pas plus de"
    r"|tot|maximaal|hooguit|minder dan|ten hoogste"
    r"|hasta|máximo|como máximo|menos de|no más de)(?!\w)",
    re.IGNORECASE,
)
_LOWER_ONLY = re.compile(
    r"\b(from|min(?:imum)?|at least|over|above|more than|ab|mindestens"
    r"|à partir de|au moins|plus de|vanaf|minimaal|minstens|ten minste|meer dan"
    r"|desde|al menos|mínimo|más de)(?!\w)",
    re.IGNORECASE,
)
_NO_GAP = re.compile(r"$^")


@dataclass(frozen=True, slots=True)
class Number:
    value: float
    start: int
    end: int
    scaled: bool  # carried a k/m suffix


def to_number(token: str) -> float | None:
    """One numeric token to a float, guessing which separator is the decimal one.

    With both ``.`` and ``,`` the last is the decimal mark. With one kind only, it
    groups thousands when it repeats or is followed by exactly three digits
    (``2.500`` is two thousand five hundred, ``6.5`` six and a half).
    """
    cleaned = token
    for grouping in ("'", "’", "\u202f", "\u00a0", " "):
        cleaned = cleaned.replace(grouping, "")
    if not cleaned or not cleaned[0].isdigit():
        return None
    dots, commas = cleaned.count("."), cleaned.count(",")
    if dots and commas:
        decimal = "." if cleaned.rfind(".") > cleaned.rfind(",") else ","
        grouping = "," if decimal == "." else "."
        cleaned = cleaned.replace(grouping, "").replace(decimal, ".")
    elif dots or commas:
        mark = "." if dots else ","
        whole, _, tail = cleaned.partition(mark)
        groups_thousands = cleaned.count(mark) > 1 or (len(tail) == 3 and whole != "0" and len(whole) <= 3)
        cleaned = cleaned.replace(mark, "") if groups_thousands else cleaned.replace(mark, ".")
    try:
        value = float(cleaned)
    except ValueError:
        return None
    return value if math.isfinite(value) else None  # hundreds of digits are no amount or count


def numbers_in(text: str, *, words: bool = False) -> Iterator[Number]:
    """Every number in ``text`` in order, with ``k``/``m`` suffixes applied."""
    found: list[Number] = []
    for match in _TOKEN.finditer(text):
        value = to_number(match.group(1))
        if value is None:
            continue
        suffix = (match.group(2) or "").lower()
        scaled = bool(suffix)
        found.append(Number(value * _MULTIPLIERS.get(suffix, 1), match.start(), match.end(), scaled))
    if words and not found:
        found = [
            Number(float(NUMBER_WORDS[m.group(1).lower()]), m.start(), m.end(), False)
            for m in _WORD_TOKEN.finditer(text)
        ]
    yield from found


def bounds(
    numbers: list[Number], text: str, *, noise: re.Pattern[str] = _NO_GAP
) -> tuple[float | None, float | None]:
    """The range the numbers of ``text`` state: ``10-15``, ``up to 8`` (no lower end), ``10+`` (no upper).

    ``noise`` is what may stand between the two ends besides the range word
    (currency signs in ``£4,000 - £6,000``).
    """
    first = numbers[0]
    if len(numbers) > 1:
        gap = noise.sub("", text[first.end : numbers[1].start])
        if _RANGE_GAP.match(gap):
            return first.value, numbers[1].value
    before = text[: first.start]
    if _UPPER_ONLY.search(before):
        return None, first.value
    if _LOWER_ONLY.search(before) or text[first.end : first.end + 2].strip().startswith("+"):
        return first.value, None
    return first.value, first.value
