"""What the worker will make of a recorded mail — for the poll report only.

Adapters are pure, so reading a mail here changes nothing: the worker still
normalises every lead itself, and its verdict is the one that counts.
"""

from __future__ import annotations

from leadrelay.adapters import Adapter, NotALead, ParseContext, ParseError, RawItem, context_for
from leadrelay.routing import Routing
from leadrelay.worker.imap.intake import CONTENT_TYPE, Outcome, Recorded


class Reader:
    """Reads recorded mail with its channel's adapter (one parse context per channel)."""

    def __init__(self, routing: Routing) -> None:
        self.routing = routing
        self._contexts: dict[str, tuple[ParseContext, Adapter] | None] = {}

    def _context(self, channel: str) -> tuple[ParseContext, Adapter] | None:
        if channel not in self._contexts:
            try:
                self._contexts[channel] = context_for(self.routing, channel)
            except KeyError:  # no adapter: the worker makes it a parse_error dead letter
                self._contexts[channel] = None
        return self._contexts[channel]

    def outcome(self, recorded: Recorded, raw: bytes) -> Outcome:
        if recorded.settled is not None:
            return recorded.settled
        assert recorded.channel is not None  # mail without a channel is settled at the door
        context = self._context(recorded.channel)
        if context is None:
            return Outcome.failed
        ctx, adapter = context
        try:
            adapter.parse(RawItem(kind="email", body=raw, content_type=CONTENT_TYPE), ctx)
        except NotALead:
            return Outcome.ignored
        except ParseError:
            return Outcome.failed
        except Exception:  # an adapter bug is the worker's to report; the mail is safely recorded
            return Outcome.new
        return Outcome.new
