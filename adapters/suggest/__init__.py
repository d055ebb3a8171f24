"""Teach the configurable adapter a new portal from two or three of its items.

:func:`suggest` reads sample e-mails (or webhook JSON bodies) the way the
adapters do — ``Label: value`` pairs and HTML label/value cells, forwards
unwrapped — and proposes a ``parse:`` block: each label mapped to the canonical
field its words (the shared vocabulary) or its values (e-mail, phone, money,
date, integer) say, the sender domains, and a reference pattern. Pure: bytes in,
a :class:`Suggestion` out; :mod:`.render` writes it as YAML to paste.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from leadrelay.adapters.base import Limits
from leadrelay.adapters.configurable import VOCABULARY
from leadrelay.adapters.mail.forwards import unwrap
from leadrelay.adapters.mail.message import read_mail
from leadrelay.adapters.mail.pairs import pairs_in
from leadrelay.adapters.parsing.labels import normalise_label
from leadrelay.adapters.suggest.references import find_reference
from leadrelay.adapters.suggest.values import FIELD_BY_TYPE, FITS, TEXT, common_type

_EXACT = 3
_SECTIONS = ("contact", "listing", "broker")
_BROKER_FIELD = {"email": "broker.email", "phone": "broker.phone", "full_name": "broker.contact"}
_SECOND_LEVEL = frozenset(("co", "com", "org", "net", "ac", "gov", "ltd", "plc"))
_EVENT_KEYS = frozenset(("event", "eventtype", "type", "action", "topic", "eventname", "trigger"))
_SAMPLE_LIMITS = Limits(message_bytes=10_000_000, part_text_bytes=1_000_000, mail_text_bytes=2_000_000)


@dataclass(frozen=True, slots=True)
class Sample:
    name: str
    body: bytes
    kind: str  # "email" or "webhook"


@dataclass
class Observed:
    """One label (or JSON path) as the samples show it."""

    label: str  # as first written
    values: list[str] = field(default_factory=list)
    seen_in: set[int] = field(default_factory=set)
    owner: str | None = None  # a JSON leaf's section by its parents (an agent's email)
    is_path: bool = False  # a JSON path, not an e-mail label


@dataclass(frozen=True, slots=True)
class Mapping:
    label: str  # the e-mail label, or the JSON path
    field: str | None  # None: no field fits
    sure: bool
    why: str
    value_type: str
    seen_in: int  # how many samples hold it
    is_path: bool = False


@dataclass(frozen=True)
class Suggestion:
    samples: int
    kind: str  # "email", "webhook" or "mixed"
    mappings: tuple[Mapping, ...]
    senders: tuple[str, ...]
    reference_pattern: str | None
    reference_in_subject: bool
    unread: tuple[str, ...]  # samples that could not be read, with why
    events: tuple[str, tuple[str, ...]] | None = None  # a webhook's event path and the types seen

    def parse_block(self) -> dict[str, Any]:
        """The ``parse:`` block as data (what :mod:`.render` writes with comments)."""
        block: dict[str, Any] = {}
        if self.senders:
            block["senders"] = list(self.senders)
        if self.reference_pattern:
            block["reference_pattern"] = self.reference_pattern
        labels: dict[str, list[str]] = {}
        paths: dict[str, list[str]] = {}
        for mapping in self.mappings:
            if mapping.field is not None:
                target = paths if mapping.is_path else labels
                target.setdefault(mapping.field, []).append(mapping.label)
        if labels:
            block["labels"] = labels
        if paths:
            block["json_paths"] = paths
        return block


def _domain(address: str) -> str | None:
    host = address.rpartition("@")[2].lower().strip(">. ")
    parts = host.split(".")
    if len(parts) < 2 or not all(parts):
        return None
    keep = 3 if len(parts) >= 3 and len(parts[-1]) == 2 and parts[-2] in _SECOND_LEVEL else 2
    return ".".join(parts[-keep:])


def _is_label(line: str) -> bool:
    match = VOCABULARY.match(line)
    return match is not None and match.score[0] == _EXACT and len(line) <= 40


class _Reading:
    def __init__(self) -> None:
        self.observed: dict[str, Observed] = {}
        self.subjects: list[str] = []
        self.bodies: list[str] = []
        self.senders: list[str] = []
        self.unread: list[str] = []
        self.events: dict[str, list[str]] = {}

    def see(self, key: str, label: str, value: str, index: int, owner: str | None = None) -> None:
        entry = self.observed.setdefault(key, Observed(label, owner=owner))
        if value.strip():
            entry.values.append(value)
        entry.seen_in.add(index)

    def email(self, sample: Sample, index: int) -> None:
        mail = read_mail(sample.body, _SAMPLE_LIMITS)
        layer = unwrap(mail)[-1]
        self.subjects.append(layer.subject or mail.subject)
        self.bodies.append("\n".join((*layer.texts, *layer.links)))
        domain = _domain(layer.sender or mail.sender)
        if domain:
            self.senders.append(domain)
        for text in layer.texts:
            for pair in pairs_in(text, _is_label):
                key = normalise_label(pair.label)
                if key:
                    self.see(key, pair.label, pair.value, index)

    def webhook(self, sample: Sample, index: int) -> None:
        data = json.loads(sample.body)
        if not isinstance(data, dict):
            raise ValueError("the body is not a JSON object")
        self.subjects.append("")
        self.bodies.append(json.dumps(data, ensure_ascii=False))
        for key, value in data.items():
            if isinstance(value, str) and normalise_label(str(key)).replace(" ", "") in _EVENT_KEYS:
                self.events.setdefault(str(key), []).append(value)
        pending: list[tuple[Any, tuple[str, ...], str | None]] = [(data, (), None)]
        while pending:
            node, where, owner = pending.pop()
            if isinstance(node, dict):
                for key, child in node.items():
                    match = VOCABULARY.match(str(key))
                    section = match.field.split(".")[0] if match else None
                    inner = section if section in _SECTIONS and isinstance(child, dict | list) else owner
                    pending.append((child, (*where, str(key)), inner))
            elif isinstance(node, list):
                pending.extend((child, (*where, "*"), owner) for child in node[:1])
            elif node is not None and where:
                path = ".".join(where)
                entry = self.observed.setdefault(path, Observed(path, owner=owner, is_path=True))
                entry.values.append(str(node))
                entry.seen_in.add(index)


def _map(key: str, entry: Observed, samples: int) -> Mapping:
    kind = common_type(entry.values)
    name = next((part for part in reversed(entry.label.split(".")) if part != "*"), entry.label)
    match = VOCABULARY.match(name)
    by_type = FIELD_BY_TYPE.get(kind)
    seen = len(entry.seen_in)

    def make(field_: str | None, sure: bool, why: str) -> Mapping:
        return Mapping(entry.label, field_, sure, why, kind, seen, entry.is_path)

    if match is not None:
        field_ = match.field
        if entry.owner == "broker" and field_.startswith("contact."):
            field_ = _BROKER_FIELD.get(field_.removeprefix("contact."), field_)
        fits = FITS.get(field_)
        if fits is not None and kind not in fits and kind != TEXT:
            if by_type is not None and match.score[0] < _EXACT:
                why = f"its values are {kind}s; the label alone would say {field_}"
                return make(by_type, False, why)
            why = f"the label says {field_}, but its values look like {kind}s"
            return make(field_, False, why)
        if match.score[0] == _EXACT:
            return make(field_, True, "the label is in the shared vocabulary")
        return make(field_, False, "a word of the label is in the vocabulary")
    if by_type is not None:
        return make(by_type, False, f"by its values ({kind})")
    return make(None, False, "no field fits: the label is new and the values are " + kind)


def _settle(mappings: list[Mapping]) -> list[Mapping]:
    """One guess per field: a field named by the label keeps it over a guess by value type."""
    named = {m.field for m in mappings if m.field and not m.why.startswith("by its values")}
    settled: list[Mapping] = []
    taken: set[str] = set()
    for m in mappings:
        if m.field and m.why.startswith("by its values") and (m.field in named or m.field in taken):
            m = replace(m, field=None, why=f"also {m.value_type}s, but {m.field} is taken")
        if m.field and m.why.startswith("by its values"):
            taken.add(m.field)
        settled.append(m)
    return settled


def suggest(samples: Sequence[Sample]) -> Suggestion:
    """What the samples have in common, as a proposed ``parse:`` block."""
    reading = _Reading()
    read = 0
    for sample in samples:
        try:
            if sample.kind == "webhook":
                reading.webhook(sample, read)
            else:
                reading.email(sample, read)
        except (ValueError, UnicodeDecodeError, RecursionError) as err:
            reading.unread.append(f"{sample.name}: {err}")
            continue
        read += 1
    mappings = _settle([_map(key, entry, read) for key, entry in reading.observed.items()])
    reference_labels = {
        v
        for m, e in zip(mappings, reading.observed.values(), strict=True)
        if m.field == "external_id"
        for v in e.values
    }
    reference = find_reference(reading.subjects, reading.bodies, frozenset(reference_labels))
    if reference is not None:
        mappings = [
            _reference_label(m, entry, reference.tokens)
            for m, entry in zip(mappings, reading.observed.values(), strict=True)
        ]
    kinds = {s.kind for s in samples}
    return Suggestion(
        samples=read,
        kind=kinds.pop() if len(kinds) == 1 else "mixed",
        mappings=tuple(sorted(mappings, key=lambda m: (m.field is None, -m.seen_in))),
        senders=tuple(dict.fromkeys(reading.senders)),
        reference_pattern=reference.pattern if reference else None,
        reference_in_subject=bool(reference and reference.in_subject),
        unread=tuple(reading.unread),
        events=next(
            (
                (key, tuple(dict.fromkeys(values)))
                for key, values in reading.events.items()
                if len(values) == read and read > 0
            ),
            None,
        ),
    )


def _reference_label(mapping: Mapping, entry: Observed, tokens: tuple[str, ...]) -> Mapping:
    if mapping.field is None and entry.values and set(entry.values) <= set(tokens):
        return replace(mapping, field="external_id", sure=True, why="its values are the reference")
    return mapping
