"""The one root of every exception leadrelay defines, and the few kinds below it.

Every exception class in the package derives from :class:`LeadRelayError`
through one of these kinds (a test walks the package to keep it so; a missing
dead letter is both a ``NotFound`` and a ``Refused``, as callers catch either).
``str(err)`` is always one line a person can act on: never a lead's personal
data, never a secret. A class that callers also catch as a built-in keeps it as
a second base (``ValueError``, ``KeyError``).

``NotFound`` — the record named does not exist (a dead letter, a sandbox tenant).
    The admin API answers 404 ``{"detail": …}``, the admin page its "Not found"
    page, the CLI one ``error:`` line and exit 1.

``Refused`` — understood, but not allowed as asked, and trying again as it is
    will not help: a replay that could deliver twice, a purged lead, a discard
    without a reason, an erasure while a delivery is in flight, a retention run
    the policy forbids, a bad webhook signature, no admin session, a worker
    whose lease was taken over. The admin API answers 409, the webhook 401, the
    admin page shows the message (or the login form), the CLI one ``error:`` line
    and exit 1; a worker that lost its lease stops and writes nothing.

``InputError`` — what came in cannot be read as a lead: a body too large, a
    portal's payload or mail that does not parse (:class:`ParseError`), or an
    item that is clearly not a lead (:class:`NotALead`). The webhook answers
    400/413 and stores nothing; the worker turns a parse error into a
    ``parse_error`` dead letter and settles a non-lead as ignored; ``leadrelay
    parse`` exits 2.

``ConfigurationError`` — an operator must fix a setting before this can work:
    the routing file, a secret file, a channel's adapter, Nexudus credentials.
    The CLI (and ``leadrelay worker`` at start) prints it and exits 1; a
    delivery that meets it pauses the lead (no attempt is spent) until it is fixed.

``UpstreamError`` — a service leadrelay talks to failed or answered wrongly: an
    IMAP inbox, the alert webhook. It is reported (the poll report, the CLI's
    table, a log line) and tried again at the next pass; nothing is lost.
    (Nexudus's answers are outcomes of a delivery, not exceptions: see
    ``leadrelay.nexudus.classify``.)

Exceptions of libraries (SQLAlchemy, httpx, pydantic) are not wrapped: a ledger
that cannot be reached propagates as such, and the broker's failures are logged
where the lead is published (the sweeper publishes it again).
"""

from __future__ import annotations


class LeadRelayError(Exception):
    """The root of every exception leadrelay defines; ``str(err)`` is one line for a person."""


class NotFound(LeadRelayError):
    """The record named does not exist (404)."""


class Refused(LeadRelayError):
    """Understood, but not allowed as asked (409; 401 for a signature)."""


class InputError(LeadRelayError):
    """What came in cannot be read as a lead (400/413; a ``parse_error`` dead letter)."""


class ConfigurationError(LeadRelayError):
    """Something an operator must set before this process can work."""


class UpstreamError(LeadRelayError):
    """A service leadrelay talks to failed; tried again at the next pass."""
