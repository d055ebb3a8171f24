"""Which adapter reads which channel: one line per channel, no import-guessing."""

from __future__ import annotations

from adapters import canonical
from adapters.base import Adapter

ADAPTERS: dict[str, Adapter] = {
    "canonical": canonical.ADAPTER,
}


def get_adapter(name: str) -> Adapter:
    """The adapter registered as ``name``; KeyError names the known ones."""
    try:
        return ADAPTERS[name]
    except KeyError:
        known = ", ".join(sorted(ADAPTERS))
        raise KeyError(f"no adapter named {name!r} (known: {known})") from None
