"""Where a lead goes: its channel, location and Nexudus account, from the routing file."""

from __future__ import annotations

from leadrelay.canonical import CanonicalLead
from leadrelay.nexudus.payloads import Route
from leadrelay.routing import Routing
from leadrelay.routing.mapping import resolve


def resolve_route(routing: Routing, channel: str, lead: CanonicalLead) -> Route | str:
    """Where the lead goes, or why it cannot go anywhere (a ``routing`` dead letter)."""
    config = routing.channels.get(channel)
    if config is None:
        return f"channel {channel!r} is not in the routing file"
    location = routing.location_for(channel, lead.listing.id)
    if location is None:
        return (
            f"listing {lead.listing.id!r} of channel {channel!r} is claimed by no location "
            "and defaults.location is not set"
        )
    loc = routing.locations[location]
    mapping = resolve(routing, channel, location)
    if mapping.board_column_id is not None and mapping.board_column_id != loc.board_column_id:
        loc = loc.model_copy(update={"board_column_id": mapping.board_column_id})  # this channel's column
    return Route(
        channel=channel,
        channel_config=config,
        location=location,
        location_config=loc,
        account=loc.account,
        agent_id=routing.agent_id(channel, location),
        follow_up_hours=mapping.follow_up_hours,
        term_months=routing.defaults.term_months,
        mapping=mapping,
    )
