"""Helpers the adapter tests share: routing context, parsing a fixture, dotted-path reading."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from leadrelay.adapters import AdapterError, ParseContext, RawItem
from leadrelay.adapters.base import Adapter
from leadrelay.adapters.pieces import split_item
from leadrelay.adapters.registry import context_for
from leadrelay.canonical import CanonicalLead
from leadrelay.routing import Routing, load_routing
from leadrelay.testing.partners import Case

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"  # what no partner owns: the configurable channel's


@cache
def routing() -> Routing:
    return load_routing(None)


def context(channel: str, routes: Routing | None = None) -> tuple[ParseContext, Adapter]:
    """The adapter and parse context for a channel, from the embedded routing file by default."""
    return context_for(routes or routing(), channel)


def parse(case: Case) -> CanonicalLead:
    ctx, adapter = context(case.channel)
    return adapter.parse(case.item(), ctx)


def parse_several(case: Case) -> list[CanonicalLead | AdapterError]:
    """Each lead of a mail that holds several, as the door splits it (or what reading it raised)."""
    ctx, adapter = context(case.channel)
    split = split_item(adapter, case.path.read_bytes(), ctx.limits)
    found: list[CanonicalLead | AdapterError] = []
    for piece in split.pieces:
        try:
            found.append(adapter.parse(RawItem("email", piece.body, piece.content_type), ctx))
        except AdapterError as err:
            found.append(err)
    return found


def at(data: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        data = data.get(key) if isinstance(data, dict) else None
    return data


def mismatches(lead: CanonicalLead, expected: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``path: (expected, got)`` for every expected field the lead gets wrong."""
    got = lead.to_json_dict()
    return {path: (want, at(got, path)) for path, want in expected.items() if at(got, path) != want}
