"""The generic channel: the body *is* a CanonicalLead (Zapier, Make, any partner)."""

from __future__ import annotations

import json
from typing import Any

from leadrelay.adapters.base import NotALead, ParseContext, ParseError, RawItem, finish
from leadrelay.canonical import CanonicalLead


class CanonicalAdapter:
    name = "canonical"
    lead_source = 11
    country = "GB"
    senders: tuple[str, ...] = ()

    def parse(self, item: RawItem, ctx: ParseContext) -> CanonicalLead:
        if item.kind != "webhook":
            raise NotALead("the canonical channel takes JSON webhooks only, not e-mail")
        try:
            data: Any = json.loads(item.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ParseError(f"body is not JSON: {err}") from None
        except RecursionError:
            raise ParseError("body is JSON nested too deeply to read") from None
        if not isinstance(data, dict):
            raise ParseError("body must be a JSON object")
        return finish(data, ctx)


ADAPTER = CanonicalAdapter()
