"""Matching the labels people put in front of values to canonical fields, by meaning.

A :class:`LabelTable` maps canonical field paths (``contact.phone``) to synonyms.
A label matches a synonym exactly, by containing all its words (``Client mobile
number`` ⊇ ``mobile``), or — for German compounds — by containing it inside a word
(``Telefonnummer`` ⊇ ``telefon``). The best tier wins, then the longest synonym, so
``Consultant email`` goes to the broker although it also says ``email``.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

_OPENING = re.compile(r"[(\[]")
_CLOSING = {"(": ")", "[": "]"}
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NOT_WORD = re.compile(r"[^a-z0-9]+")
_MAX_LABEL_WORDS = 8
_MIN_COMPOUND_CHARS = 4


def fold(text: str) -> str:
    """Lower-case ASCII words: accents dropped, ``ß`` → ``ss``, camelCase split."""
    text = _CAMEL.sub(" ", text.replace("ß", "ss"))
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return _NOT_WORD.sub(" ", text.lower()).strip()


def without_asides(text: str) -> str:
    """``text`` with each ``(…)`` and ``[…]`` replaced by a space, outermost-left first.

    An opening with no closing after it is skipped at once: searching on from each
    of them, as a regex would, is quadratic on a long run of ``(``.
    """
    last_closing = {closing: text.rfind(closing) for closing in _CLOSING.values()}
    pieces: list[str] = []
    kept = scan = 0
    while (opening := _OPENING.search(text, scan)) is not None:
        start, closing = opening.start(), _CLOSING[opening.group(0)]
        if last_closing[closing] < start:
            scan = start + 1
            continue
        pieces += [text[kept:start], " "]
        kept = scan = text.index(closing, start + 1) + 1
    return "".join(pieces) + text[kept:]


def normalise_label(label: str) -> str:
    """What a label says once parentheses (``Budget (EUR/Monat)``) and punctuation go."""
    return fold(without_asides(label))


@dataclass(frozen=True, slots=True)
class _Synonym:
    field: str
    words: tuple[str, ...]
    text: str
    custom: bool


@dataclass(frozen=True, slots=True)
class LabelMatch:
    field: str
    score: tuple[int, int, int]


class _Index:
    """The synonyms a label can match at all: by its whole text, by one of its words,
    or (compounds) inside one of its words — so a match tests a few, not every synonym.
    """

    def __init__(self, synonyms: tuple[_Synonym, ...]) -> None:
        self.exact: dict[str, list[int]] = defaultdict(list)
        self.by_word: dict[str, list[int]] = defaultdict(list)
        self.compounds: list[tuple[int, str]] = []
        for position, synonym in enumerate(synonyms):
            self.exact[synonym.text].append(position)
            for word in set(synonym.words):
                self.by_word[word].append(position)
            if len(synonym.words) == 1 and len(synonym.text) >= _MIN_COMPOUND_CHARS:
                self.compounds.append((position, synonym.text))

    def candidates(self, text: str, words: list[str]) -> list[int]:
        """Positions of the synonyms :func:`_tier` may rank above 0, in table order."""
        found = set(self.exact.get(text, ()))
        if len(words) <= _MAX_LABEL_WORDS:
            for word in set(words):
                found.update(self.by_word.get(word, ()))
                if len(word) >= _MIN_COMPOUND_CHARS:
                    found.update(position for position, compound in self.compounds if compound in word)
        return sorted(found)


class LabelTable:
    """Synonyms per canonical field; later tables extend earlier ones."""

    def __init__(self, table: Mapping[str, Iterable[str]], *, custom: bool = False) -> None:
        self._use(
            tuple(
                _Synonym(field, tuple(text.split()), text, custom)
                for field, synonyms in table.items()
                for text in (normalise_label(s) for s in synonyms)
                if text
            )
        )

    def _use(self, synonyms: tuple[_Synonym, ...]) -> None:
        self._synonyms = synonyms
        self._index = _Index(synonyms)

    def extended(self, table: Mapping[str, Iterable[str]], *, custom: bool = False) -> LabelTable:
        """This table plus ``table``; ``custom`` synonyms win ties against built-in ones."""
        merged = LabelTable({})
        merged._use((*LabelTable(table, custom=custom)._synonyms, *self._synonyms))
        return merged

    def fields(self) -> frozenset[str]:
        return frozenset(s.field for s in self._synonyms)

    def synonyms(self, field: str, *, custom: bool | None = None) -> tuple[str, ...]:
        """The (normalised) labels that name ``field``: all, or only the routing file's own (``custom``)."""
        return tuple(
            dict.fromkeys(s.text for s in self._synonyms if s.field == field and custom in (None, s.custom))
        )

    def match(self, label: str) -> LabelMatch | None:
        """The field a label names, or None when it names none we know."""
        text = normalise_label(label)
        words = text.split()
        if not words:
            return None
        best: LabelMatch | None = None
        for position in self._index.candidates(text, words):
            synonym = self._synonyms[position]
            tier = _tier(synonym, text, words)
            if tier == 0:
                continue
            score = (tier, int(synonym.custom), len(synonym.text))
            if best is None or score > best.score:
                best = LabelMatch(synonym.field, score)
        return best


def _tier(synonym: _Synonym, text: str, words: list[str]) -> int:
    if synonym.text == text:
        return 3
    if len(words) > _MAX_LABEL_WORDS:
        return 0
    if all(w in words for w in synonym.words):
        return 2
    if len(synonym.words) == 1 and len(synonym.text) >= _MIN_COMPOUND_CHARS:
        return 1 if any(synonym.text in w for w in words) else 0
    return 0
