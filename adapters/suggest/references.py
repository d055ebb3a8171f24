"""A ``reference_pattern`` from tokens of one shape that every sample carries.

A reference looks like ``REF-12345``, ``DB48213`` or ``enq_8F2KQ7XW``: a short
prefix of letters, an optional ``-``/``_``/``#``, then letters and digits with at
least two digits. A shape (same prefix, separator and character class) found in
every sample, with a different token in each, is the portal's reference.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_TOKEN = re.compile(r"(?<![A-Za-z0-9@.])([A-Za-z]{2,8})([-_#]?)([A-Za-z0-9]{4,24})(?![A-Za-z0-9@])")
_MAX_TEXT = 200_000


@dataclass(frozen=True, slots=True)
class Shape:
    prefix: str
    separator: str
    kind: str  # "digits", "upper", "lower" or "mixed"

    def pattern(self, shortest: int) -> str:
        body = {"digits": r"\d", "upper": "[A-Z0-9]", "lower": "[a-z0-9]", "mixed": "[A-Za-z0-9]"}[self.kind]
        return rf"\b({self.prefix}{self.separator}{body}{{{shortest},}})\b"


@dataclass(frozen=True, slots=True)
class Reference:
    pattern: str
    tokens: tuple[str, ...]  # one per sample
    in_subject: bool


def _kind(rest: str) -> str | None:
    if sum(ch.isdigit() for ch in rest) < 2:
        return None
    if rest.isdigit():
        return "digits"
    if rest.upper() == rest:
        return "upper"
    return "lower" if rest.lower() == rest else "mixed"


def tokens_in(text: str) -> dict[Shape, list[str]]:
    """Reference-like tokens of ``text`` by shape, in order of appearance."""
    found: dict[Shape, list[str]] = {}
    for match in _TOKEN.finditer(text[:_MAX_TEXT]):
        prefix, separator, rest = match.groups()
        kind = _kind(rest)
        if kind is None or (not separator and prefix.isalpha() and rest[0].isalpha()):
            continue
        found.setdefault(Shape(prefix, separator, kind), []).append(match.group(0))
    return found


def find_reference(
    subjects: Sequence[str], bodies: Sequence[str], preferred: frozenset[str]
) -> Reference | None:
    """The shape every sample holds with its own token; ``preferred`` tokens (a reference label's
    values) win, then one in every subject, then the longest token."""
    if len(subjects) < 2:
        return None
    per_sample = [tokens_in(f"{subject}\n{body}") for subject, body in zip(subjects, bodies, strict=True)]
    in_subjects = [tokens_in(subject) for subject in subjects]
    best: tuple[tuple[int, int, int], Reference] | None = None
    for shape in per_sample[0]:
        if not all(shape in sample for sample in per_sample):
            continue
        firsts = tuple(sample[shape][0] for sample in per_sample)
        if len(set(firsts)) < len(firsts):
            continue  # the same in every mail: a product code, not a reference
        subject_each = all(shape in sample for sample in in_subjects)
        shortest = min(len(token) for token in firsts) - len(shape.prefix) - len(shape.separator)
        rank = (int(bool(preferred & set(firsts))), int(subject_each), shortest)
        candidate = Reference(shape.pattern(shortest), firsts, subject_each)
        if best is None or rank > best[0]:
            best = (rank, candidate)
    return None if best is None else best[1]
