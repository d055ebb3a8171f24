"""How a lead's opportunity is made, configurable per account, location and channel.

``mapping`` may be set in ``defaults``, on an account, on a channel, on a location,
and on a location for one channel (``locations.L.by_channel.C``); for each key the
nearest setting wins: location × channel, location, channel, account, defaults.
The location's own ``board_column_id`` and ``follow_up_hours`` count as its
location-level setting, ``defaults.follow_up_hours`` as the default.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator

from leadrelay.routing.base import StrictModel

if TYPE_CHECKING:
    from leadrelay.routing.model import Routing

DEFAULT_NAME_TEMPLATE = "{label} {reference}"
# what a Name template may say (nothing personal: the Name is also kept in the ledger)
NAME_FIELDS = ("label", "reference", "channel", "location", "kind", "listing")


class MappingConfig(StrictModel):
    """Each key optional: unset, the next level's applies."""

    name_template: str | None = Field(
        default=None,
        max_length=200,
        description="the opportunity Name, e.g. '{label} {reference}'; fields: " + ", ".join(NAME_FIELDS),
    )
    board_column_id: int | None = Field(
        default=None,
        description="the stage new opportunities land in (on a location, or a location × channel)",
    )
    follow_up_hours: int | None = Field(default=None, ge=0, description="DueDate: the enquiry's time + this")
    currency: str | None = Field(
        default=None, pattern=r"^[A-Z]{3}$", description="the currency Value is kept in (the location's)"
    )
    currency_rates: dict[str, float] = Field(
        default_factory=dict,
        description="the worth of one unit of each currency in a common unit, e.g. {GBP: 1, EUR: 0.86}",
    )

    @field_validator("name_template")
    @classmethod
    def _known_fields(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            names = [name for _, name, _, _ in string.Formatter().parse(value) if name is not None]
        except ValueError as err:
            raise ValueError(f"not a template: {err}") from None
        unknown = sorted({name for name in names if name not in NAME_FIELDS})
        if unknown:
            raise ValueError(f"unknown field {{{unknown[0]}}} (fields: {', '.join(NAME_FIELDS)})")
        if "reference" not in names:
            raise ValueError("must hold {reference}: the Name tells one enquiry from another")
        return value

    @field_validator("currency", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("currency_rates", mode="before")
    @classmethod
    def _rates(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        rates: dict[str, Any] = {}
        for code, rate in value.items():
            if not isinstance(code, str) or len(code) != 3 or not code.isalpha():
                raise ValueError(f"{code!r} is not a currency code (ISO 4217, e.g. GBP)")
            if isinstance(rate, bool) or not isinstance(rate, int | float) or rate <= 0:
                raise ValueError(f"{code}: a rate must be a number above 0")
            rates[code.upper()] = rate
        return rates


@dataclass(frozen=True, slots=True)
class Mapping:
    """The mapping one lead's opportunity is made with (every level resolved)."""

    name_template: str = DEFAULT_NAME_TEMPLATE
    board_column_id: int | None = None
    follow_up_hours: int = 24
    currency: str | None = None
    currency_rates: dict[str, float] = field(default_factory=dict)


def location_only(routing: Routing) -> list[str]:
    """Problems: a column set where it cannot belong to one board (a channel, an account, defaults)."""
    levels = [("defaults.mapping", routing.defaults.mapping)]
    levels += [(f"accounts.{name}.mapping", a.mapping) for name, a in routing.accounts.items()]
    levels += [(f"channels.{name}.mapping", c.mapping) for name, c in routing.channels.items()]
    return [
        f"{where}.board_column_id: a column belongs to one location's board; set it on the location "
        "(or on locations.<name>.by_channel.<channel>)"
        for where, level in levels
        if level is not None and level.board_column_id is not None
    ]


def resolve(routing: Routing, channel: str, location: str) -> Mapping:
    """The mapping of a lead of ``channel`` going to ``location`` (both in the routing file)."""
    loc = routing.locations[location]
    legacy = MappingConfig(board_column_id=loc.board_column_id, follow_up_hours=loc.follow_up_hours)
    channel_config = routing.channels.get(channel)
    account = routing.accounts.get(loc.account)
    levels = [
        loc.by_channel.get(channel),
        loc.mapping,
        legacy,
        channel_config.mapping if channel_config else None,
        account.mapping if account else None,
        routing.defaults.mapping,
        MappingConfig(follow_up_hours=routing.defaults.follow_up_hours),
    ]
    present = [level for level in levels if level is not None]

    def nearest(name: str) -> Any:
        return next((getattr(level, name) for level in present if getattr(level, name) is not None), None)

    rates: dict[str, float] = {}
    for level in reversed(present):  # each currency's nearest rate
        rates.update(level.currency_rates)
    return Mapping(
        name_template=nearest("name_template") or DEFAULT_NAME_TEMPLATE,
        board_column_id=nearest("board_column_id"),
        follow_up_hours=nearest("follow_up_hours"),
        currency=nearest("currency"),
        currency_rates=rates,
    )
