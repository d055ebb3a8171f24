"""Which channel an e-mail belongs to, whoever forwarded it.

Checked in order: the sender of the original (innermost forwarded) message, then
each outer sender, against every channel's sender patterns (the adapter's own
plus ``parse.senders`` from the routing file); then the original's content — the
portal's domain in links and text, its reference format. The inbox poller falls
back to the inbox's default channel when this says None.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from leadrelay.adapters.from_email import sender_matches
from leadrelay.adapters.mail.forwards import Layer, unwrap
from leadrelay.adapters.mail.message import read_mail
from leadrelay.adapters.portal import PortalAdapter
from leadrelay.adapters.registry import UnknownAdapterError, adapter_for
from leadrelay.routing import ChannelConfig


def _signatures(channels: Mapping[str, ChannelConfig]) -> dict[str, PortalAdapter | None]:
    adapters: dict[str, PortalAdapter | None] = {}
    for name, config in channels.items():
        try:
            adapter = adapter_for(name, config)
        except UnknownAdapterError:
            continue
        adapters[name] = adapter if isinstance(adapter, PortalAdapter) else None
    return adapters


def _by_sender(layers: list[Layer], adapters: Mapping[str, PortalAdapter | None]) -> str | None:
    for layer in reversed(layers):
        for name, adapter in adapters.items():
            if adapter and any(sender_matches(layer.sender, pattern) for pattern in adapter.senders):
                return name
    return None


def _mentions(adapter: PortalAdapter, layer: Layer) -> int:
    text = "\n".join((layer.subject, layer.message_id, *layer.texts, *layer.links)).lower()
    domains = [s.rpartition("@")[2].lstrip("*.") for s in adapter.senders]
    score = sum(len(re.findall(rf"(?<![\w-]){re.escape(d)}\b", text)) for d in domains if d and "*" not in d)
    score += sum(2 for pattern in adapter.spec.references if pattern.search(text))
    return score


def _by_content(layers: list[Layer], adapters: Mapping[str, PortalAdapter | None]) -> str | None:
    for layer in reversed(layers):
        scores = {name: _mentions(adapter, layer) for name, adapter in adapters.items() if adapter}
        best = max(scores.items(), key=lambda item: item[1], default=(None, 0))
        if best[1] > 0 and list(scores.values()).count(best[1]) == 1:
            return best[0]
    return None


def detect_channel(message: bytes, channels: Mapping[str, ChannelConfig]) -> str | None:
    """The configured channel a mail comes from, or None when nothing says."""
    try:
        layers = unwrap(read_mail(message))
    except Exception:
        return None
    adapters = _signatures(channels)
    return _by_sender(layers, adapters) or _by_content(layers, adapters)
