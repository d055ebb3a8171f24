"""The one place that decides what a Nexudus answer means (NEXUDUS.md).

=========  =============================================================
outcome    when
=========  =============================================================
ok         2xx and the envelope does not say ``WasSuccessful: false``
retry      5xx, timeouts, connection errors (the write may have happened)
throttle   409 or 429 (``Retry-After``): wait, never dead
dead       400 validation (Errors kept verbatim), 200 + WasSuccessful false
pause      401/403 or refused credentials: the account needs attention
=========  =============================================================
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any

import httpx

from leadrelay.db import utcnow

DEFAULT_THROTTLE_SECONDS = 2.0
EXCERPT = 500


class Outcome(StrEnum):
    ok = "ok"
    retry = "retry"
    throttle = "throttle"
    dead = "dead"
    pause = "pause"


@dataclass(frozen=True, slots=True)
class Result:
    """What one Nexudus call came to; ``value`` is the parsed body on success."""

    outcome: Outcome
    status_code: int | None = None
    message: str = ""
    errors: list[dict[str, Any]] | None = None
    retry_after: float | None = None
    maybe_committed: bool = False  # a write whose answer was lost may have happened
    value: Any = None
    excerpt: str | None = None
    fresh_token: bool = field(default=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.ok


def retry_after_seconds(value: str | None) -> float:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date)."""
    if not value:
        return DEFAULT_THROTTLE_SECONDS
    with contextlib.suppress(ValueError):
        return max(0.0, float(value))  # delta-seconds (fractional from a sped-up sandbox)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return DEFAULT_THROTTLE_SECONDS
    return max(0.0, (when - utcnow()).total_seconds())


# Postgres's text and jsonb take no NUL character: what the ledger keeps of an answer (its
# message, errors, excerpt) would make the lead's next write fail, every time. It says U+FFFD.
_NUL_ESCAPED = b"\\u0000"


def _body(response: httpx.Response) -> Any:
    content = response.content
    if not content:
        return None
    if _NUL_ESCAPED in content:  # a raw NUL is no JSON at all: no body
        content = content.replace(_NUL_ESCAPED, b"\\ufffd")
    try:
        return json.loads(content)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _envelope_message(body: Any, fallback: str) -> str:
    if isinstance(body, dict):
        for key in ("Message", "error_description", "error", "message"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
    return fallback


def classify_response(response: httpx.Response, *, write: bool) -> Result:
    status = response.status_code
    body = _body(response)
    # from the bytes as UTF-8, JSON's encoding: httpx's ``text`` would parse the charset first
    excerpt = (
        response.content[: EXCERPT * 4].decode("utf-8", "replace")[:EXCERPT].replace("\x00", "\ufffd") or None
    )
    if status in (409, 429):
        return Result(
            Outcome.throttle,
            status,
            message=f"throttled by Nexudus (HTTP {status})",
            retry_after=retry_after_seconds(response.headers.get("Retry-After")),
            excerpt=excerpt,
        )
    if 200 <= status < 300:
        if isinstance(body, dict) and body.get("WasSuccessful") is False:
            return Result(
                Outcome.dead,
                status,
                message=_envelope_message(body, "Nexudus answered WasSuccessful: false"),
                errors=body.get("Errors"),
                excerpt=excerpt,
            )
        return Result(Outcome.ok, status, value=body, excerpt=excerpt)
    if status in (401, 403):
        return Result(
            Outcome.pause,
            status,
            message=_envelope_message(body, f"HTTP {status} from Nexudus"),
            excerpt=excerpt,
        )
    if status >= 500:
        # Observed: a create can answer a generic 500 and still have happened.
        return Result(
            Outcome.retry,
            status,
            message=f"Nexudus server error (HTTP {status})",
            maybe_committed=write,
            excerpt=excerpt,
        )
    errors = body.get("Errors") if isinstance(body, dict) else None
    return Result(
        Outcome.dead,
        status,
        message=_envelope_message(body, f"HTTP {status} from Nexudus"),
        errors=errors,
        excerpt=excerpt,
    )


def classify_exception(exc: httpx.HTTPError, *, write: bool) -> Result:
    """Transport failures: retryable; a write may have reached Nexudus unless we never connected."""
    never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    kind = type(exc).__name__
    return Result(
        Outcome.retry,
        None,
        message=f"no answer from Nexudus ({kind})",
        maybe_committed=write and not never_sent,
    )
