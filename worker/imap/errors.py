"""Why an inbox could not be polled, in one line that says what to do."""

from __future__ import annotations

from typing import Literal

from leadrelay.errors import UpstreamError

# what kind of trouble, for the ledger, the Inboxes page and docs/runbook.md ("An inbox is stale or failing")
Kind = Literal["auth", "consent", "folder", "tls", "timeout", "network", "server", "config", "lease"]


class InboxError(UpstreamError):
    """An inbox could not be polled; ``str(err)`` is one line for an operator.

    ``retryable``: trying again soon may help (a dropped connection, a timeout, a
    server error), as opposed to a setting an operator must fix first. ``kind``
    classes the failure (never a secret, never a message's content).
    """

    def __init__(self, reason: str, *, retryable: bool, kind: Kind | None = None) -> None:
        super().__init__(reason)
        self.retryable = retryable
        self.kind: Kind = kind or ("network" if retryable else "config")
