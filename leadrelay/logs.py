"""JSON logs without personal data or secrets.

Leads are personal data: log lines carry ids, channels and outcomes, never
names, e-mail addresses, phone numbers or message text. As a second line of
defence, a processor masks anything that looks like an e-mail address or a
phone number, and drops values of keys that name personal or secret fields.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import structlog
from structlog.typing import EventDict

SENSITIVE_KEYS = frozenset(
    {
        "email",
        "phone",
        "full_name",
        "first_name",
        "last_name",
        "message",
        "body",
        "raw",
        "password",
        "secret",
        "token",
        "authorization",
        "contact",
        "lead",
    }
)
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]++@[\w-]+(?:\.[\w-]+)+")  # starts a run, never backtracks: linear
_PHONE = re.compile(r"(?<![\w.])\+?\d[\d ()./-]{6,}\d")
REDACTED = "[redacted]"
PHONE_MIN_DIGITS = 9  # fewer digits than this are dates, ids and counts, not phones


_DECIMAL = re.compile(r"^\d+\.\d+$")  # a duration or a ratio, not a phone number
# pydantic puts the offending input into its messages: a name, a message text
_INPUT_VALUE = re.compile(r"input_value=(?:.*?(?=, input_type=)|\S+)", re.S)


# a webhook URL's last segment may be a channel's token (``POST /webhooks/<channel>/<token>``):
# whatever logs a path (an access log turned on, an exception) prints it without the token
_PATH_TOKEN = re.compile(r"(/webhooks/[^/\s?#\"']{1,200}/)[^/\s?#\"']++")


def _mask_phone(match: re.Match[str]) -> str:
    text = match.group(0)
    if _DECIMAL.match(text) or sum(c.isdigit() for c in text) < PHONE_MIN_DIGITS:
        return text
    return REDACTED


def mask_personal(text: str) -> str:
    """Anything in free text that looks like an e-mail address, a phone number or echoed input."""
    masked = _PATH_TOKEN.sub(rf"\g<1>{REDACTED}", _INPUT_VALUE.sub(f"input_value={REDACTED}", text))
    return _PHONE.sub(_mask_phone, _EMAIL.sub(REDACTED, masked))


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return mask_personal(value)
    if isinstance(value, dict):
        return {k: (REDACTED if str(k).lower() in SENSITIVE_KEYS else _scrub(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def redact(_logger: Any, _method: str, event: EventDict) -> dict[str, Any]:
    return {
        key: (REDACTED if key.lower() in SENSITIVE_KEYS else _scrub(value)) for key, value in event.items()
    }


def configure(level: str = "INFO", *, json: bool = True) -> None:
    """JSON lines on stderr for structlog and the standard library alike."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact,
    ]
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared[:-1], structlog.stdlib.ExtraAdder(), redact],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def bind_lead(lead_id: int, channel: str, meta: Mapping[str, Any] | None) -> None:
    """Name the lead in every log line that follows (in this request or task).

    ``event_id`` is the sender's own id for the item: the webhook delivery id, or
    the inbox and IMAP UID of a mail (never its Message-ID, which can hold a name).
    """
    meta = meta or {}
    event_id = meta.get("delivery_id")
    if event_id is None and meta.get("uid") is not None:
        event_id = f"{meta.get('inbox')}:{meta.get('uidvalidity')}:{meta.get('uid')}"
    structlog.contextvars.bind_contextvars(lead_id=lead_id, channel=channel, event_id=event_id)


@contextmanager
def task_context(**values: Any) -> Iterator[None]:
    """A task's log context: nothing left over from the previous task, nothing left behind."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(**values)
    try:
        yield
    finally:
        structlog.contextvars.clear_contextvars()
