"""Reading a portal's webhook JSON: named paths first, then keys by meaning.

Paths are dotted (``enquiry.client.email``), compared without case or
punctuation (``contact-name`` = ``ContactName``); ``*`` matches any key or list
item. Keys no path names are still read when their name matches the portal's
label table (``mobile``, ``team_size``) — never ones under a part that belongs to
someone else (an agent's ``email`` is not the client's).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from leadrelay.adapters.base import NotALead, ParseError
from leadrelay.adapters.fields import Found
from leadrelay.adapters.parsing.labels import LabelTable, fold
from leadrelay.adapters.spec import PortalSpec

Location = tuple[str, ...]
_SECTIONS = ("contact", "listing", "broker")
_FALLBACK_SCORE_CAP = 5


def _key(name: str) -> str:
    return fold(str(name)).replace(" ", "")


def _children(node: Any, segment: str, fold_key: Callable[[str], str]) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if segment == "*" or fold_key(key) == fold_key(segment):
                yield str(key), value
    elif isinstance(node, list):
        for index, value in enumerate(node):
            if segment == "*" or segment == str(index):
                yield str(index), value


def lookup(data: Any, path: str, fold_key: Callable[[str], str] = _key) -> Iterator[tuple[Location, Any]]:
    """Every (location, value) a dotted path reaches, in document order."""
    frontier: list[tuple[Location, Any]] = [((), data)]
    for segment in path.split("."):
        frontier = [
            ((*where, key), child)
            for where, node in frontier
            for key, child in _children(node, segment, fold_key)
        ]
    yield from frontier


def _present(value: Any) -> bool:
    return value is not None and value != "" and value != [] and value != {}


def _section(field: str) -> str | None:
    top = field.split(".")[0]
    return top if top in _SECTIONS else None


_Node = tuple[Any, Location | None, str | None, frozenset[str]]  # value, where, name, owners


@dataclass(frozen=True, slots=True)
class _Leaf:
    name: str  # the last key on the way to it that is a name, not a list index
    owners: frozenset[str]  # the sections (or fields) the names before that one stand for
    value: Any


class _Walk:
    """The named leaves of a body, depth first with a stack: deep nesting is no reason to fail.

    What a leaf's ancestors say is carried down, each key's label matched once:
    worked out again for every leaf, it is quadratic in a deep body with many leaves.
    """

    def __init__(self, labels: LabelTable, consumed: set[Location]) -> None:
        self.match = functools.cache(labels.match)
        self._consumed = consumed
        self._depth = max(map(len, consumed), default=0)  # below it no location is consumed

    def leaves(self, data: Any) -> Iterator[_Leaf]:
        pending: list[_Node] = [(data, (), None, frozenset())]
        while pending:
            node, where, name, owners = pending.pop()
            if where is not None and where in self._consumed:
                continue
            if isinstance(node, dict | list):
                pending.extend(reversed(self._children(node, where, name, owners)))
            elif name is not None and _present(node):
                yield _Leaf(name, owners, node)

    def _owner(self, name: str | None) -> frozenset[str]:
        match = self.match(name) if name is not None else None
        return frozenset() if match is None else frozenset((_section(match.field) or match.field,))

    def _children(
        self,
        node: dict[Any, Any] | list[Any],
        where: Location | None,
        name: str | None,
        owners: frozenset[str],
    ) -> list[_Node]:
        inherited = owners | self._owner(name)
        deeper = where is not None and len(where) < self._depth
        children: list[_Node] = []
        for key, child in node.items() if isinstance(node, dict) else enumerate(node):
            part = str(key)
            at = (*where, part) if deeper and where is not None else None
            children.append((child, at, name, owners) if part.isdigit() else (child, at, part, inherited))
        return children


def _by_meaning(data: Any, spec: PortalSpec, consumed: set[Location], found: Found) -> None:
    walk = _Walk(spec.labels, consumed)
    for leaf in walk.leaves(data):
        match = walk.match(leaf.name)
        if match is None:
            continue
        section = _section(match.field)
        if section and leaf.owners and section not in leaf.owners:
            continue
        tier, custom, length = match.score
        found.offer(match.field, leaf.value, leaf.name, (min(tier, _FALLBACK_SCORE_CAP) - 4, custom, length))


def _kind_of_json(data: Any) -> str:
    if data is None:
        return "null"
    if isinstance(data, list):
        return "an empty array" if not data else "an array"
    if isinstance(data, str):
        return "a string"
    return "a boolean" if isinstance(data, bool) else "a number"


def json_object(body: bytes) -> dict[str, Any]:
    """The body's JSON object. An empty body, ``{}`` or JSON that is no object is no lead
    (:class:`NotALead`, recorded as ignored); a body that is not JSON cannot be read."""
    if not body.strip():
        raise NotALead("the body is empty")
    try:
        data: Any = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ParseError(f"body is not JSON ({err.__class__.__name__}: {err})") from None
    except RecursionError:
        raise ParseError("body is JSON nested too deeply to read") from None
    if not isinstance(data, dict):
        raise NotALead(f"the body is {_kind_of_json(data)}, not a JSON object")
    if not data:
        raise NotALead("the body is an empty JSON object")
    return data


def read_webhook(body: bytes, spec: PortalSpec) -> Found:
    data = json_object(body)
    fold_key = functools.cache(_key)  # every key meets every path: folded once per body
    events = [v for p in spec.events.paths for _, v in lookup(data, p, fold_key) if isinstance(v, str | int)]
    # a follow-up's event type wins over another path's value (Kontor: ``data.type`` is ``leads``)
    event = next((v for v in events if spec.events.follow_up_for(str(v))), events[0] if events else None)
    found = Found()
    found.offer("kind", spec.events.kind_for(None if event is None else str(event)), "event")
    consumed: set[Location] = set()
    for field, paths in spec.json_paths.items():
        for path in paths:
            for where, value in lookup(data, path, fold_key):
                consumed.add(where)
                if _present(value):
                    found.offer(field, value, where[-1] if where else path)
    _by_meaning(data, spec, consumed, found)
    return found
