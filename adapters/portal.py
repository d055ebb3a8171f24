"""The engine every portal adapter shares: its spec in, a CanonicalLead out.

``parse`` lets only :class:`ParseError` and :class:`NotALead` out: anything else
an odd payload provokes is converted, with the channel and door named, so the
item lands in the dead-letter queue instead of crashing a worker.
"""

from __future__ import annotations

from leadrelay.adapters.base import AdapterError, NotALead, ParseContext, ParseError, RawItem, finish
from leadrelay.adapters.fields import build_draft, language_region
from leadrelay.adapters.from_email import read_email
from leadrelay.adapters.from_webhook import read_webhook
from leadrelay.adapters.spec import PortalSpec
from leadrelay.canonical import CanonicalLead

_DOORS = {"webhook": "webhook", "email": "e-mail"}


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
        door = _DOORS.get(item.kind, str(item.kind))
        try:
            found = (
                read_webhook(item.body, self.spec)
                if item.kind == "webhook"
                else read_email(item.body, self.spec, ctx.limits)
            )
            draft = build_draft(found, self.spec.reading)
            if self.spec.broker_name:
                draft.setdefault("broker", {}).setdefault("name", self.spec.broker_name)
            return finish(draft, ctx, drop_invalid=True, language_region=language_region(found))
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
