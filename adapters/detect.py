"""Which channel an e-mail or a webhook body belongs to.

A mail, whoever forwarded it: checked in order, the sender of the original
(innermost forwarded) message, then each outer sender, against every channel's
sender patterns (the adapter's own plus ``parse.senders`` from the routing file);
then the original's content — the portal's domain in links and text, its
reference format. The inbox poller falls back to the inbox's default channel when
this says None.

A webhook body, by its shape: the channel whose JSON paths reach the most of its
fields (and whose event table knows its event type), when exactly one does.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from leadrelay.adapters.base import Adapter, RawItem
from leadrelay.adapters.from_email import sender_matches
from leadrelay.adapters.from_webhook import lookup
from leadrelay.adapters.mail.forwards import Layer, unwrap
from leadrelay.adapters.mail.message import read_mail
from leadrelay.adapters.portal import PortalAdapter
from leadrelay.adapters.registry import UnknownAdapterError, adapter_for
from leadrelay.adapters.spec import event_key
from leadrelay.routing import ChannelConfig

_KNOWN_EVENT = 2  # a known event type counts as much as two fields: shared by portals, it rarely decides


def _adapters(channels: Mapping[str, ChannelConfig]) -> dict[str, Adapter]:
    adapters: dict[str, Adapter] = {}
    for name, config in channels.items():
        try:
            adapters[name] = adapter_for(name, config)
        except UnknownAdapterError:
            continue
    return adapters


def _signatures(channels: Mapping[str, ChannelConfig]) -> dict[str, PortalAdapter | None]:
    return {
        name: adapter if isinstance(adapter, PortalAdapter) else None
        for name, adapter in _adapters(channels).items()
    }


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


def _winner(scores: Mapping[str, int]) -> str | None:
    """The one channel with the highest score above nothing; None on a tie."""
    best = max(scores.items(), key=lambda item: item[1], default=(None, 0))
    return best[0] if best[1] > 0 and list(scores.values()).count(best[1]) == 1 else None


def _by_content(layers: list[Layer], adapters: Mapping[str, PortalAdapter | None]) -> str | None:
    for layer in reversed(layers):
        found = _winner({name: _mentions(adapter, layer) for name, adapter in adapters.items() if adapter})
        if found:
            return found
    return None


def detect_channel(message: bytes, channels: Mapping[str, ChannelConfig]) -> str | None:
    """The configured channel a mail comes from, or None when nothing says."""
    try:
        layers = unwrap(read_mail(message))
    except Exception:
        return None
    adapters = _signatures(channels)
    return _by_sender(layers, adapters) or _by_content(layers, adapters)


def _shape(adapter: Adapter, data: dict[str, Any], fold_key: Callable[[str], str]) -> int:
    """How many of the adapter's fields the body has, and two more for an event type it knows."""
    spec = adapter.spec if isinstance(adapter, PortalAdapter) else None
    paths: Mapping[str, tuple[str, ...]] = spec.json_paths if spec else getattr(adapter, "json_paths", {})
    score = sum(any(next(lookup(data, p, fold_key), None) for p in ps) for ps in paths.values())
    if spec is not None:
        known = {event_key(e) for e in (*spec.events.handled, *spec.events.ignored, *spec.events.follow_ups)}
        events = (v for p in spec.events.paths for _, v in lookup(data, p, fold_key))
        if any(isinstance(v, str | int) and event_key(str(v)) in known for v in events):
            score += _KNOWN_EVENT
    return score


def detect_webhook_channel(body: bytes, channels: Mapping[str, ChannelConfig]) -> str | None:
    """The configured channel a webhook body's shape belongs to, or None when nothing (or a tie) says."""
    try:
        data: Any = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    fold_key = functools.cache(event_key)  # every key meets every path: folded once per body
    return _winner({name: _shape(adapter, data, fold_key) for name, adapter in _adapters(channels).items()})


def detect(item: RawItem, channels: Mapping[str, ChannelConfig]) -> str | None:
    """The configured channel an item comes from: a mail by sender or content, a webhook by shape."""
    if item.kind == "email":
        return detect_channel(item.body, channels)
    return detect_webhook_channel(item.body, channels)
