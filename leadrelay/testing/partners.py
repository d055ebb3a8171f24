"""The partners' fixtures, for the tests and the bench: ``adapters/*/fixtures``, walked.

A partner's folder holds ``fixtures/samples/`` (copies of the shared samples, the
portals' contract), ``fixtures/variations/`` (what real notifications vary in) and
one ``fixtures/expected.json``: the key fields each item must normalise to, keyed
by the item's path below ``fixtures/``. Nothing here lists the partners: a new
folder is a new partner with its fixtures tested.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leadrelay.adapters import RawItem
from leadrelay.adapters.base import RawKind

REPO = Path(__file__).resolve().parents[2]  # the checkout: leadrelay/testing/ is two below
PARTNERS = REPO / "adapters"
SHARED_SAMPLES = REPO.parent / "shared" / "samples"  # absent in a clean clone
EXPECTED = "expected.json"
ITEM_SUFFIXES = (".json", ".eml")


@dataclass(frozen=True)
class Case:
    key: str  # "hubblehq/samples/email-lead.eml": the channel and the item's path below fixtures/
    channel: str
    path: Path
    expected: dict[str, Any]  # its entry in expected.json ({} when it has none)

    @property
    def group(self) -> str:
        """``samples`` or ``variations``: the folder below ``fixtures/``."""
        return self.key.split("/")[1]

    @property
    def kind(self) -> RawKind:
        return "email" if self.path.suffix == ".eml" else "webhook"

    @property
    def lead(self) -> bool:
        """False for an item the adapter must refuse (``_raises`` in its entry), that holds several,
        or that follows up an enquiry (``_follow_up``)."""
        return "_raises" not in self.expected and not self.several and not self.follow_up

    @property
    def follow_up(self) -> bool:
        """An update, a viewing or a withdrawal of an enquiry: ``_follow_up`` lists what it reads as."""
        return "_follow_up" in self.expected

    @property
    def several(self) -> bool:
        """A mail that holds several leads (a digest, a table attached): ``_leads`` lists them."""
        return "_leads" in self.expected

    @property
    def leads(self) -> list[dict[str, Any]]:
        """The expected fields of each lead of a mail that holds several, in order."""
        found = self.expected.get("_leads", [])
        return found if isinstance(found, list) else []

    def item(self) -> RawItem:
        return RawItem(kind=self.kind, body=self.path.read_bytes())


def expected_entries(root: Path) -> dict[str, dict[str, Any]]:
    """``root/expected.json`` without its ``_about`` notes."""
    entries = json.loads((root / EXPECTED).read_text("utf-8"))
    return {key: value for key, value in entries.items() if not key.startswith("_")}


def items(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix in ITEM_SUFFIXES and p.name != EXPECTED)


def cases(root: Path, channel: str | None = None) -> list[Case]:
    """Every item below ``root`` with its entry in ``root/expected.json``.

    With ``channel`` the entries are keyed by the item's path below ``root``;
    without, the first folder of that path names the channel (``spacepool/x.eml``).
    """
    expected = expected_entries(root)
    found = []
    for path in items(root):
        name = path.relative_to(root).as_posix()
        key = f"{channel}/{name}" if channel else name
        found.append(Case(key, channel or name.split("/")[0], path, expected.get(name, {})))
    return found


def partner_folders() -> list[Path]:
    """``adapters/<channel>/fixtures`` of every partner that has them."""
    return sorted(p for p in PARTNERS.glob("*/fixtures") if (p / EXPECTED).is_file())


def partner_cases(group: str | None = None) -> list[Case]:
    """Every partner's fixtures (only ``samples`` or ``variations`` when ``group`` says)."""
    found = [case for root in partner_folders() for case in cases(root, root.parent.name)]
    return [case for case in found if group is None or case.group == group]


def sample(channel: str, name: str) -> Path:
    """A partner's sample, e.g. ``sample("kontor", "email-lead.eml")``."""
    return PARTNERS / channel / "fixtures" / "samples" / name
