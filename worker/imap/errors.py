"""Why an inbox could not be polled, in one line that says what to do."""

from __future__ import annotations

from leadrelay.errors import UpstreamError


class InboxError(UpstreamError):
    """An inbox could not be polled; ``str(err)`` is one line for an operator.

    ``retryable``: trying again soon may help (a dropped connection, a timeout, a
    server error), as opposed to a setting an operator must fix first.
    """

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.retryable = retryable
