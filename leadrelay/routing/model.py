"""The routing file as a whole: its parts checked against each other, and the lookups on it."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from leadrelay.routing.accounts import AccountConfig, LocationConfig
from leadrelay.routing.base import StrictModel
from leadrelay.routing.channels import ChannelConfig
from leadrelay.routing.inboxes import InboxConfig
from leadrelay.routing.mapping import MappingConfig, location_only
from leadrelay.routing.staff import AssignmentRule, NotificationsConfig, StaffMember, staff_problems


class Defaults(StrictModel):
    location: str | None = None
    protection_days: int = Field(default=90, ge=0)
    follow_up_hours: int = Field(default=24, ge=0)
    term_months: int = Field(default=12, gt=0)
    rejection_window_hours: int = Field(default=48, ge=0)
    reuse_open_opportunities: bool = Field(
        default=True,
        description="note a new enquiry on an open opportunity staff already made for the customer",
    )
    mapping: MappingConfig | None = None


class Routing(StrictModel):
    accounts: dict[str, AccountConfig] = Field(default_factory=dict)
    locations: dict[str, LocationConfig] = Field(default_factory=dict)
    channels: dict[str, ChannelConfig] = Field(default_factory=dict)
    inboxes: dict[str, InboxConfig] = Field(default_factory=dict)
    defaults: Defaults = Field(default_factory=Defaults)
    staff: dict[int, StaffMember] = Field(default_factory=dict, description="Nexudus user id -> who")
    assignment: list[AssignmentRule] = Field(default_factory=list, description="ResponsibleId rules")
    notifications: NotificationsConfig = Field(default_factory=NotificationsConfig)

    @model_validator(mode="after")
    def _references(self) -> Routing:
        problems: list[str] = []
        for name, loc in self.locations.items():
            if loc.account not in self.accounts:
                problems.append(f"locations.{name}.account: no account named {loc.account!r}")
            for channel in (*loc.listings, *loc.agent_ids, *loc.by_channel):
                if channel not in self.channels:
                    problems.append(f"locations.{name}: names channel {channel!r}, which is not configured")
        if self.defaults.location and self.defaults.location not in self.locations:
            problems.append(f"defaults.location: no location named {self.defaults.location!r}")
        claimed: dict[tuple[str, str], str] = {}
        for name, loc in self.locations.items():
            for channel, ids in loc.listings.items():
                for listing in ids:
                    other = claimed.setdefault((channel, listing), name)
                    if other != name:
                        problems.append(
                            f"locations.{name}.listings.{channel}: listing {listing!r} is also claimed "
                            f"by location {other!r}"
                        )
        for name, inbox in self.inboxes.items():
            if inbox.channel and inbox.channel not in self.channels:
                problems.append(f"inboxes.{name}.channel: no channel named {inbox.channel!r}")
        problems += location_only(self)
        problems.extend(staff_problems(self))
        if problems:
            raise ValueError("\n".join(problems))
        return self

    # ---- lookups -------------------------------------------------------------

    def location_for(self, channel: str, listing_id: str | None) -> str | None:
        """The location claiming this listing, else ``defaults.location``."""
        if listing_id is not None:
            for name, loc in self.locations.items():
                if str(listing_id) in loc.listings.get(channel, ()):
                    return name
        return self.defaults.location

    def claimed_location(self, channel: str, listing_id: str | None) -> str | None:
        """The location that explicitly claims this listing (no default)."""
        if listing_id is None:
            return None
        for name, loc in self.locations.items():
            if str(listing_id) in loc.listings.get(channel, ()):
                return name
        return None

    def agent_id(self, channel: str, location: str) -> int | None:
        loc = self.locations[location]
        return loc.agent_ids.get(channel, self.channels[channel].agent_id)

    def protection_days(self, channel: str, account: str | None) -> int:
        """The broker protection window: the channel's, else the account's, else the default."""
        for days in (
            self.channels[channel].protection_days if channel in self.channels else None,
            self.accounts[account].protection_days if account in self.accounts else None,
        ):
            if days is not None:
                return days
        return self.defaults.protection_days


SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def routing_json_schema() -> dict[str, Any]:
    """The JSON Schema of the routing file, generated from these models (``leadrelay schema routing``)."""
    schema = Routing.model_json_schema()
    return {
        "$schema": SCHEMA_DIALECT,
        "title": "leadrelay routing file",
        "description": "Nexudus accounts, locations, channels and inboxes (docs/configuration.md)",
        **{key: value for key, value in schema.items() if key not in ("title", "description")},
    }
