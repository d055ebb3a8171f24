"""What every adapter is: raw item in, :class:`CanonicalLead` out — pure.

Adapters never touch the database or the network. Exceptions that may escape an
adapter (anything else is a bug that the property tests hunt for):

    AdapterError
    ├── ParseError   the item is meant to be a lead but cannot be read
    │                (becomes a dead letter ``parse_error`` with the raw item kept)
    └── NotALead     the item is clearly not a lead: a newsletter, a reply, an
                     event type we ignore (recorded as ``ignored``)
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pydantic import ValidationError

from leadrelay.canonical import CanonicalLead, first_error
from leadrelay.errors import InputError
from leadrelay.settings import Settings, get_settings

RawKind = Literal["webhook", "email"]


class AdapterError(InputError):
    """Base of what an adapter may raise; ``str(err)`` is one line for humans."""


class ParseError(AdapterError):
    """The item is meant to be a lead but cannot be read."""


class NotALead(AdapterError):
    """The item is clearly not a lead (and that is fine)."""


@dataclass(frozen=True, slots=True)
class RawItem:
    """One inbound item exactly as received."""

    kind: RawKind
    body: bytes
    content_type: str | None = None


def _no_listing_region(_listing_id: str) -> str | None:
    return None


@dataclass(frozen=True, slots=True)
class Limits:
    """How much of an item an adapter reads: the ``LEADRELAY_MAX_*_BYTES`` settings."""

    message_bytes: int  # a bigger e-mail is not read at all: a parse error, its raw bytes kept
    part_text_bytes: int  # decoded text read from each MIME part; the rest is cut
    mail_text_bytes: int  # decoded text read from all of a message's parts together

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(settings.max_message_bytes, settings.max_part_text_bytes, settings.max_mail_text_bytes)


def configured_limits() -> Limits:
    """The limits this process was started with."""
    return Limits.of(get_settings())


@dataclass(frozen=True, slots=True)
class ParseContext:
    """What an adapter may know besides the payload: the routing file and the size limits."""

    channel: str
    lead_source: int
    default_region: str
    listing_region: Callable[[str], str | None] = _no_listing_region
    options: dict[str, Any] = field(default_factory=dict)
    limits: Limits = field(default_factory=configured_limits)


class Adapter(Protocol):
    """A channel's reader. ``parse`` raises only :class:`AdapterError`."""

    name: str
    lead_source: int  # Nexudus LeadSource (routing may override)
    country: str  # default phone region when no listing says otherwise
    senders: tuple[str, ...]  # sender domains/addresses that identify the channel's mail

    def parse(self, item: RawItem, ctx: ParseContext) -> CanonicalLead: ...


def _drop(draft: dict[str, Any], loc: tuple[int | str, ...]) -> bool:
    """Remove the deepest part of ``draft`` at ``loc``; False when nothing could go."""
    node: Any = draft
    for key in loc[:-1]:
        if not isinstance(node, dict) or not isinstance(node.get(key), dict):
            break
        node = node[key]
    else:
        if isinstance(node, dict) and loc and loc[-1] in node:
            del node[loc[-1]]
            return True
        return False
    return False


def finish(
    draft: dict[str, Any],
    ctx: ParseContext,
    *,
    drop_invalid: bool = False,
    model: type[CanonicalLead] = CanonicalLead,
    language_region: str | None = None,
) -> CanonicalLead:
    """Validate an adapter's draft into a lead, with the listing's phone region.

    With ``drop_invalid`` a value the model rejects (a malformed broker e-mail, a
    start date it cannot read) is left out rather than losing the whole lead; a
    lead that stays unreachable still raises. ``language_region``: the country the
    item's language points to, tried for a national phone number the listing's
    region calls invalid (``06 12 34 56 78`` in a French mail to a London listing).
    """
    listing = draft.get("listing")
    listing_id = listing.get("id") if isinstance(listing, dict) else None
    region = (ctx.listing_region(str(listing_id)) if listing_id is not None else None) or ctx.default_region
    draft = {
        **(copy.deepcopy(draft) if drop_invalid else draft),
        "channel": ctx.channel,
        "lead_source": ctx.lead_source,
    }
    while True:
        try:
            return model.model_validate(draft, context={"region": region, "language_region": language_region})
        except ValidationError as err:
            locs = [tuple(e.get("loc", ())) for e in err.errors()]
            if not drop_invalid or not all(loc and _drop(draft, loc) for loc in locs):
                raise ParseError(first_error(err)) from None
