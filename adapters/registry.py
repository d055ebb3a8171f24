"""Which adapter reads which channel: one folder per partner, found by walking the package.

A partner is a subpackage of :mod:`leadrelay.adapters` (``adapters/hubblehq/`` …)
whose ``__init__`` defines ``ADAPTER``, named as its folder; shared code
(``mail``, ``parsing``) defines none. Adding a partner is adding its folder.
"""

from __future__ import annotations

import importlib
import pkgutil

from leadrelay.adapters import configurable
from leadrelay.adapters.base import Adapter, ParseContext
from leadrelay.adapters.portal import PortalAdapter
from leadrelay.errors import ConfigurationError
from leadrelay.routing import ChannelConfig, Routing

_PACKAGE = "leadrelay.adapters"


def _discover() -> dict[str, Adapter]:
    """Every partner package's ``ADAPTER`` by folder name, in name order."""
    package = importlib.import_module(_PACKAGE)
    found: dict[str, Adapter] = {}
    for module in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if not module.ispkg:
            continue
        adapter = getattr(importlib.import_module(f"{_PACKAGE}.{module.name}"), "ADAPTER", None)
        if adapter is None:
            continue
        if adapter.name != module.name:
            raise RuntimeError(f"adapters/{module.name}/ holds an adapter named {adapter.name!r}")
        found[module.name] = adapter
    return found


ADAPTERS: dict[str, Adapter] = _discover()


class UnknownAdapterError(ConfigurationError, KeyError):
    """No adapter can read a channel; the message names the channel and the options."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown adapter"


def get_adapter(name: str) -> Adapter:
    """The adapter registered as ``name``; KeyError names the known ones."""
    try:
        return ADAPTERS[name]
    except KeyError:
        known = ", ".join(sorted(ADAPTERS))
        raise UnknownAdapterError(f"no adapter named {name!r} (known: {known})") from None


def adapter_for(channel_name: str, channel_config: ChannelConfig) -> Adapter:
    """The adapter for a routed channel.

    ``adapter: configurable`` (or a ``parse:`` block on a channel no adapter is
    registered for) builds one from the routing file; otherwise the registered
    adapter named by ``adapter:`` or, by default, by the channel itself — extended
    by its ``parse:`` block when it has one.
    """
    name = channel_config.adapter or channel_name
    if name == configurable.CONFIGURABLE or (name not in ADAPTERS and channel_config.parse is not None):
        return configurable.build(channel_name, channel_config)
    if name not in ADAPTERS:
        known = ", ".join(sorted(ADAPTERS))
        raise UnknownAdapterError(
            f"channel {channel_name!r}: no adapter named {name!r} (known: {known}; or set "
            f"'adapter: {configurable.CONFIGURABLE}' with a 'parse:' block)"
        )
    adapter = ADAPTERS[name]
    if channel_config.parse is not None and isinstance(adapter, PortalAdapter):
        return PortalAdapter(configurable.extend(adapter.spec, channel_config.parse))
    return adapter


def context_for(routing: Routing, channel: str) -> tuple[ParseContext, Adapter]:
    """A routed channel's adapter and parse context; a listing's location gives the phone region."""
    config = routing.channels[channel]
    adapter = adapter_for(channel, config)

    def listing_region(listing_id: str) -> str | None:
        location = routing.claimed_location(channel, listing_id)
        return routing.locations[location].country if location else None

    ctx = ParseContext(
        channel=channel,
        lead_source=config.lead_source,
        default_region=config.country or adapter.country,
        listing_region=listing_region,
    )
    return ctx, adapter
