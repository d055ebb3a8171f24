"""Where a lead goes: its channel, location and Nexudus account, from the routing file."""

from __future__ import annotations

from leadrelay.canonical import CanonicalLead
from leadrelay.nexudus.payloads import Route
from leadrelay.routing import Routing


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
    return Route(
        channel=channel,
        channel_config=config,
        location=location,
        location_config=loc,
        account=loc.account,
        agent_id=routing.agent_id(channel, location),
        follow_up_hours=loc.follow_up_hours
        if loc.follow_up_hours is not None
        else routing.defaults.follow_up_hours,
        term_months=routing.defaults.term_months,
    )
