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
from typing import Any

import structlog

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
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"(?<![\w.])\+?\d[\d ()./-]{6,}\d")
REDACTED = "[redacted]"
PHONE_MIN_DIGITS = 9  # fewer digits than this are dates, ids and counts, not phones


_DECIMAL = re.compile(r"^\d+\.\d+$")  # a duration or a ratio, not a phone number


def _mask_phone(match: re.Match[str]) -> str:
    text = match.group(0)
    if _DECIMAL.match(text) or sum(c.isdigit() for c in text) < PHONE_MIN_DIGITS:
        return text
    return REDACTED


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _PHONE.sub(_mask_phone, _EMAIL.sub(REDACTED, value))
    if isinstance(value, dict):
        return {k: (REDACTED if str(k).lower() in SENSITIVE_KEYS else _scrub(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def redact(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
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
