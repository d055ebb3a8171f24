"""Reading a portal's webhook JSON: named paths first, then keys by meaning.

Paths are dotted (``enquiry.client.email``), compared without case or
punctuation (``contact-name`` = ``ContactName``); ``*`` matches any key or list
item. Keys no path names are still read when their name matches the portal's
label table (``mobile``, ``team_size``) — never ones under a part that belongs to
someone else (an agent's ``email`` is not the client's).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from adapters.base import ParseError
from adapters.fields import Found
from adapters.parsing.labels import fold
from adapters.spec import PortalSpec

Location = tuple[str, ...]
_SECTIONS = ("contact", "listing", "broker")
_FALLBACK_SCORE_CAP = 5


def _key(name: str) -> str:
    return fold(str(name)).replace(" ", "")


def _children(node: Any, segment: str) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if segment == "*" or _key(key) == _key(segment):
                yield str(key), value
    elif isinstance(node, list):
        for index, value in enumerate(node):
            if segment == "*" or segment == str(index):
                yield str(index), value


def lookup(data: Any, path: str) -> Iterator[tuple[Location, Any]]:
    """Every (location, value) a dotted path reaches, in document order."""
    frontier: list[tuple[Location, Any]] = [((), data)]
    for segment in path.split("."):
        frontier = [
            ((*where, key), child) for where, node in frontier for key, child in _children(node, segment)
        ]
    yield from frontier


def _present(value: Any) -> bool:
    return value is not None and value != "" and value != [] and value != {}


def leaves(data: Any, where: Location = ()) -> Iterator[tuple[Location, Any]]:
    if isinstance(data, dict):
        for key, value in data.items():
            yield from leaves(value, (*where, str(key)))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from leaves(value, (*where, str(index)))
    elif _present(data):
        yield where, data


def _section(field: str) -> str | None:
    top = field.split(".")[0]
    return top if top in _SECTIONS else None


def _by_meaning(data: Any, spec: PortalSpec, consumed: set[Location], found: Found) -> None:
    for where, value in leaves(data):
        if any(where[: len(c)] == c for c in consumed):
            continue
        names = [part for part in where if not part.isdigit()]
        if not names:
            continue
        match = spec.labels.match(names[-1])
        if match is None:
            continue
        section = _section(match.field)
        owners = {_section(m.field) or m.field for part in names[:-1] if (m := spec.labels.match(part))}
        if section and owners and section not in owners:
            continue
        tier, custom, length = match.score
        found.offer(match.field, value, names[-1], (min(tier, _FALLBACK_SCORE_CAP) - 4, custom, length))


def read_webhook(body: bytes, spec: PortalSpec) -> Found:
    try:
        data: Any = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ParseError(f"body is not JSON ({err.__class__.__name__}: {err})") from None
    if not isinstance(data, dict):
        raise ParseError("body must be a JSON object")
    event = next((v for p in spec.events.paths for _, v in lookup(data, p) if isinstance(v, str | int)), None)
    found = Found()
    found.offer("kind", spec.events.kind_for(None if event is None else str(event)), "event")
    consumed: set[Location] = set()
    for field, paths in spec.json_paths.items():
        for path in paths:
            for where, value in lookup(data, path):
                consumed.add(where)
                if _present(value):
                    found.offer(field, value, where[-1] if where else path)
    _by_meaning(data, spec, consumed, found)
    return found
