"""Which adapter reads which channel: one line per channel, no import-guessing."""

from __future__ import annotations

from leadrelay.adapters import canonical, configurable, hubblehq, kontor, liquidspace, workthere
from leadrelay.adapters.base import Adapter, ParseContext
from leadrelay.adapters.portal import PortalAdapter
from leadrelay.routing import ChannelConfig, Routing

ADAPTERS: dict[str, Adapter] = {
    "canonical": canonical.ADAPTER,
    "hubblehq": hubblehq.ADAPTER,
    "liquidspace": liquidspace.ADAPTER,
    "workthere": workthere.ADAPTER,
    "kontor": kontor.ADAPTER,
}


class UnknownAdapterError(KeyError):
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
