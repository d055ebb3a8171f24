"""The engine every portal adapter shares: its spec in, a CanonicalLead out.

``parse`` lets only :class:`ParseError` and :class:`NotALead` out: anything else
an odd payload provokes is converted, with the channel and door named, so the
item lands in the dead-letter queue instead of crashing a worker.
"""

from __future__ import annotations

import re

from leadrelay.adapters.base import AdapterError, NotALead, ParseContext, ParseError, RawItem, finish
from leadrelay.adapters.fields import build_draft
from leadrelay.adapters.from_email import read_email
from leadrelay.adapters.from_row import ROW_CONTENT_TYPE, read_row
from leadrelay.adapters.from_webhook import read_webhook
from leadrelay.adapters.spec import PortalSpec
from leadrelay.canonical import CanonicalLead

_DOORS = {"webhook": "webhook", "email": "e-mail"}
PART_HEADER = "X-LeadRelay-Part"  # on a digest's lead, written by adapters/pieces.py: "lead 2 of 5"
_PART = re.compile(rb"(?im)^x-leadrelay-part:[ \t]*([^\r\n]{1,40})")
_HEADER_BYTES = 2048


def _door(item: RawItem) -> str:
    """How the item came, for messages: ``e-mail (lead 2 of 5)`` for a digest's lead."""
    door = _DOORS.get(item.kind, str(item.kind))
    found = _PART.search(item.body[:_HEADER_BYTES]) if item.kind == "email" else None
    return f"{door} ({found.group(1).decode('ascii', 'replace').strip()})" if found else door


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
        door = _door(item)
        try:
            if item.kind == "webhook":
                found = read_webhook(item.body, self.spec)
            elif item.content_type == ROW_CONTENT_TYPE:  # a row of an attached table (adapters/pieces.py)
                found = read_row(item.body, self.spec)
            else:
                found = read_email(item.body, self.spec, ctx.limits)
            draft = build_draft(found, self.spec.reading)
            if self.spec.broker_name:
                draft.setdefault("broker", {}).setdefault("name", self.spec.broker_name)
            return finish(draft, ctx, drop_invalid=True)
        except NotALead as err:
            raise NotALead(_one_line(f"{self.name} {door}: {err}")) from None
        except (ParseError, AdapterError) as err:
            raise ParseError(_one_line(f"{self.name} {door}: {err}")) from None
        except Exception as err:
            raise ParseError(
                _one_line(f"{self.name} {door}: unreadable ({type(err).__name__}: {err})")
            ) from err


def _one_line(message: str, limit: int = 300) -> str:
    return " ".join(message.split())[:limit]
