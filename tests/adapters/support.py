"""Helpers the adapter tests share: fixture discovery, routing context, dotted-path reading."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from leadrelay.adapters import ParseContext, RawItem
from leadrelay.adapters.base import Adapter
from leadrelay.adapters.registry import context_for
from leadrelay.canonical import CanonicalLead
from leadrelay.routing import Routing, load_routing

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
SAMPLES = FIXTURES / "samples"
VARIATIONS = FIXTURES / "variations"
SHARED_SAMPLES = REPO.parent / "shared" / "samples"
ITEM_SUFFIXES = (".json", ".eml")


@dataclass(frozen=True)
class Case:
    key: str  # "channel/file", the key in expected.json
    path: Path
    expected: dict[str, Any]

    @property
    def channel(self) -> str:
        return self.key.split("/")[0]

    def item(self) -> RawItem:
        return RawItem(kind="email" if self.path.suffix == ".eml" else "webhook", body=self.path.read_bytes())


def cases(root: Path) -> list[Case]:
    """Every item under ``root/<channel>/`` with its entry in ``root/expected.json``."""
    expected = json.loads((root / "expected.json").read_text("utf-8"))
    found = sorted(p for p in root.glob("*/*") if p.suffix in ITEM_SUFFIXES)
    return [
        Case(f"{p.parent.name}/{p.name}", p, expected.get(f"{p.parent.name}/{p.name}", {})) for p in found
    ]


@cache
def routing() -> Routing:
    return load_routing(None)


def context(channel: str, routes: Routing | None = None) -> tuple[ParseContext, Adapter]:
    """The adapter and parse context for a channel, from the embedded routing file by default."""
    return context_for(routes or routing(), channel)


def parse(case: Case) -> CanonicalLead:
    ctx, adapter = context(case.channel)
    return adapter.parse(case.item(), ctx)


def at(data: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        data = data.get(key) if isinstance(data, dict) else None
    return data


def mismatches(lead: CanonicalLead, expected: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``path: (expected, got)`` for every expected field the lead gets wrong."""
    got = lead.to_json_dict()
    return {path: (want, at(got, path)) for path, want in expected.items() if at(got, path) != want}
