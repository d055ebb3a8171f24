"""Where alerts go: a webhook that takes JSON (Slack-, Teams- or PagerDuty-style relays).

The body names the condition and says what is wrong in one line (``text``, which
Slack's incoming webhooks show as it is), with a pointer into docs/runbook.md.
It never carries a lead's content. The URL is a secret (it often holds a token).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from leadrelay import __version__
from leadrelay.errors import UpstreamError
from leadrelay.settings import Settings

TIMEOUT_SECONDS = 5.0
RUNBOOK = "docs/runbook.md"


class NotifyError(UpstreamError):
    """An alert or a notification could not be handed over; it is tried again later."""


@dataclass(frozen=True, slots=True)
class Notice:
    key: str  # the condition: dead_letters, backlog, nexudus_auth:<account>
    status: str  # firing, reminder or resolved
    summary: str
    at: datetime

    def payload(self) -> dict[str, Any]:
        anchor = self.key.split(":", 1)[0].replace("_", "-")
        return {
            "service": "leadrelay",
            "alert": self.key,
            "status": self.status,
            "summary": self.summary,
            "text": f"[leadrelay] {self.status.upper()} {self.key}: {self.summary}",
            "runbook": f"{RUNBOOK}#{anchor}",
            "at": self.at.isoformat(timespec="seconds"),
        }


Send = Callable[[Notice], None]


def post_json(url: str, payload: dict[str, Any], *, what: str, headers: dict[str, str] | None = None) -> None:
    """POST ``payload`` to a webhook; :class:`NotifyError` (naming ``what``) unless it answers 2xx."""
    try:
        answer = httpx.post(
            url,
            json=payload,
            timeout=TIMEOUT_SECONDS,
            follow_redirects=False,
            headers={"User-Agent": f"leadrelay/{__version__}", **(headers or {})},
        )
    except httpx.HTTPError as exc:
        raise NotifyError(f"the {what} did not answer ({type(exc).__name__})") from None
    if not answer.is_success:
        raise NotifyError(f"the {what} answered HTTP {answer.status_code}")


def webhook_sender(url: str) -> Send:
    def send(notice: Notice) -> None:
        post_json(url, notice.payload(), what="alert webhook")

    return send


def sender_for(settings: Settings) -> Send | None:
    """The configured way to alert someone, or None when alerting is off."""
    if settings.alert_webhook_url is None:
        return None
    return webhook_sender(settings.alert_webhook_url.get_secret_value())
