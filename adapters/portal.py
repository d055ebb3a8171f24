"""The engine every portal adapter shares: its spec in, a CanonicalLead out.

``parse`` lets only :class:`ParseError` and :class:`NotALead` out: anything else
an odd payload provokes is converted, with the channel and door named, so the
item lands in the dead-letter queue instead of crashing a worker.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from leadrelay.adapters.base import AdapterError, NotALead, ParseContext, ParseError, RawItem, finish
from leadrelay.adapters.events import FollowUp, read_follow_up
from leadrelay.adapters.fields import build_draft, language_region
from leadrelay.adapters.from_email import read_email
from leadrelay.adapters.from_row import ROW_CONTENT_TYPE, read_row
from leadrelay.adapters.from_webhook import read_webhook
from leadrelay.adapters.spec import PortalSpec
from leadrelay.adapters.unread import ReadSoFar, unreachable, unread_fields
from leadrelay.canonical import CanonicalLead

UNREACHABLE = "neither an e-mail address nor a usable phone number"  # the model's words (canonical.py)

_DOORS = {"webhook": "webhook", "email": "e-mail"}
PART_HEADER = "X-LeadRelay-Part"  # on a digest's lead, written by adapters/pieces.py: "lead 2 of 5"
_PART = re.compile(rb"(?im)^x-leadrelay-part:[ \t]*([^\r\n]{1,40})")
_HEADER_BYTES = 2048
T = TypeVar("T")


def _door(item: RawItem) -> str:
    """How the item came, for messages: ``e-mail (lead 2 of 5)`` for a digest's lead."""
    door = _DOORS.get(item.kind, str(item.kind))
    found = _PART.search(item.body[:_HEADER_BYTES]) if item.kind == "email" else None
    return f"{door} ({found.group(1).decode('ascii', 'replace').strip()})" if found else door


@dataclass(frozen=True, slots=True)
class Parsed:
    lead: CanonicalLead
    unread: tuple[str, ...] = ()  # one note per field given but not readable, by field path


class PortalAdapter:
    """A channel's reader, driven entirely by its :class:`PortalSpec`."""

    def __init__(self, spec: PortalSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self.lead_source = spec.lead_source
        self.country = spec.country
        self.senders = spec.senders

    def __repr__(self) -> str:
        return f"PortalAdapter({self.name!r})"

    def parse(self, item: RawItem, ctx: ParseContext) -> CanonicalLead:
        return self.parse_noting(item, ctx).lead

    def read_so_far(self, item: RawItem, ctx: ParseContext) -> dict[str, Any] | None:
        """The canonical JSON of whatever the item holds, reachable or not; None when nothing reads."""
        try:
            found = (
                read_webhook(item.body, self.spec)
                if item.kind == "webhook"
                else read_email(item.body, self.spec, ctx.limits, require_contact=False)
            )
            draft = build_draft(found, self.spec.reading)
            region = language_region(found)
            return finish(
                draft, ctx, drop_invalid=True, model=ReadSoFar, language_region=region
            ).to_json_dict()
        except Exception:  # anything unreadable: the form is filled by hand instead
            return None

    def parse_noting(self, item: RawItem, ctx: ParseContext) -> Parsed:
        """The lead and what the item held that could not be read (``requirements.budget: …``)."""
        return _named(self.name, item, lambda: self._parse(item, ctx))

    def _parse(self, item: RawItem, ctx: ParseContext) -> Parsed:
        if item.kind == "webhook":
            found = read_webhook(item.body, self.spec)
        elif item.content_type == ROW_CONTENT_TYPE:  # a row of an attached table (adapters/pieces.py)
            found = read_row(item.body, self.spec)
        else:
            found = read_email(item.body, self.spec, ctx.limits)
        draft = build_draft(found, self.spec.reading)
        if self.spec.broker_name:
            draft.setdefault("broker", {}).setdefault("name", self.spec.broker_name)
        try:
            lead = finish(draft, ctx, drop_invalid=True, language_region=language_region(found))
        except ParseError as err:
            if UNREACHABLE not in str(err):
                raise
            raise ParseError(unreachable(found, draft, self.spec.labels, door=item.kind)) from None
        return Parsed(lead, tuple(unread_fields(found, lead.to_json_dict())))

    def follow_up(self, item: RawItem, ctx: ParseContext) -> FollowUp | None:
        """The follow-up of an enquiry this item is (adapters/events.py), None for anything else."""
        return _named(self.name, item, lambda: read_follow_up(item, self.spec, ctx))


def _named(name: str, item: RawItem, read: Callable[[], T]) -> T:
    """``read()``, letting only :class:`ParseError` and :class:`NotALead` out, one line each, the
    channel and door named."""
    door = _door(item)
    try:
        return read()
    except NotALead as err:
        raise NotALead(_one_line(f"{name} {door}: {err}")) from None
    except (ParseError, AdapterError) as err:
        raise ParseError(_one_line(f"{name} {door}: {err}")) from None
    except Exception as err:
        raise ParseError(_one_line(f"{name} {door}: unreadable ({type(err).__name__}: {err})")) from err


def _one_line(message: str, limit: int = 600) -> str:
    return " ".join(message.split())[:limit]
