"""JSON logs without personal data or secrets.

Leads are personal data: log lines carry ids, channels and outcomes, never
names, e-mail addresses, phone numbers or message text. As a second line of
defence, a processor masks anything that looks like an e-mail address or a
phone number, and drops values of keys that name personal or secret fields.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
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
_ENOUGH_DIGITS = re.compile(rf"(?:\D*+\d){{{PHONE_MIN_DIGITS}}}")  # \D and \d never overlap: linear


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
    """Anything in free text that looks like an e-mail address, a phone number or echoed input.

    Each mask runs only on text that holds what it needs to match (``input_value=``,
    a webhook path, ``@``, nine digits): the same result, at a fraction of the cost
    for the short event names, channels and ids that most log values are.
    """
    if "input_value=" in text:
        text = _INPUT_VALUE.sub(f"input_value={REDACTED}", text)
    if "/webhooks/" in text:
        text = _PATH_TOKEN.sub(rf"\g<1>{REDACTED}", text)
    if "@" in text:
        text = _EMAIL.sub(REDACTED, text)
    if _ENOUGH_DIGITS.match(text):  # fewer digits in all cannot make a phone number
        text = _PHONE.sub(_mask_phone, text)
    return text


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


class _Lines:
    """structlog's logger: each rendered event one line on the configured stream.

    As the standard library's handler does, it writes under a lock (taken anew in a
    forked child, which may have been forked while another thread held it) and drops
    a line it cannot write (a closed stream, a broken pipe) rather than fail the
    request or task that logged it. The stream is looked up at each line, so loggers
    cached before a later :func:`configure` follow it.
    """

    def __init__(self, *_args: Any) -> None:
        pass

    def msg(self, message: str) -> None:
        with _output.lock, suppress(Exception):  # a closed, broken or missing stderr: the line is lost
            stream = _output.stream
            stream.write(message + "\n")
            stream.flush()

    log = debug = info = warn = warning = err = error = critical = exception = fatal = msg


class _Output:
    def __init__(self) -> None:
        self.stream: Any = sys.stderr
        self.threshold = logging.INFO
        self.lock = threading.Lock()

    def reinit_lock(self) -> None:
        self.lock = threading.Lock()


_FILTERING: Any = structlog.make_filtering_bound_logger(logging.NOTSET)  # every level: _at_level filters


class _NeverRaises(_FILTERING):  # type: ignore[misc]  # a class structlog makes at run time
    """A bound logger whose call never raises, as a call into the standard library's logging never does.

    A value that cannot be rendered (a dict with tuple keys, a ``__repr__`` that
    raises) loses its line, not the request or task that logged it; a short line
    in its place says a line was lost, and why, without any of its values.
    """

    def _proxy_to_logger(self, method_name: str, event: str | None = None, **event_kw: Any) -> Any:
        try:
            return super()._proxy_to_logger(method_name, event, **event_kw)
        except Exception as exc:
            lost = {
                "event": "log_line_lost",
                "level": "error",
                "method": method_name,
                "error": type(exc).__name__,
            }
            _Lines().msg(json.dumps(lost))
            return None


_output = _Output()
os.register_at_fork(after_in_child=_output.reinit_lock)
# structlog's method names (``exception`` logs at ERROR, ``warn`` at WARNING)
_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "exception": logging.ERROR,
    "critical": logging.CRITICAL,
    "fatal": logging.CRITICAL,
}


def _at_level(_logger: Any, method: str, event: EventDict) -> EventDict:
    """Drop an event below the configured level (read at each event: cached loggers follow it)."""
    if _LEVELS.get(method, logging.CRITICAL) < _output.threshold:
        raise structlog.DropEvent
    return event


_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.format_exc_info,
    redact,
    structlog.processors.TimeStamper(fmt="iso", utc=True),  # ours, after redact: nothing to mask in it
]
# one list for every configure(): a logger cached on first use keeps the list it was made with
_PROCESSORS: list[Any] = [_at_level, *_SHARED, structlog.processors.JSONRenderer()]


def configure(level: str = "INFO") -> None:
    """JSON lines on stderr for structlog and the standard library alike.

    structlog's events are rendered by structlog and written directly
    (:class:`_Lines`): with the cheaper masks, a line costs about a quarter of what
    it did through the standard library's logging (bench/PROFILE.md, fourteenth
    pass), which is left to the libraries' own lines (uvicorn, Celery, httpx).
    Both pass the same processors, :func:`redact` among them.
    """
    _output.stream = sys.stderr
    _output.threshold = logging.getLevelNamesMapping()[level.upper()]
    structlog.configure(
        processors=_PROCESSORS,
        logger_factory=_Lines,
        wrapper_class=_NeverRaises,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*_SHARED[:2], structlog.stdlib.ExtraAdder(), *_SHARED[2:]],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, _PROCESSORS[-1]],
        )
    )
    logging.raiseExceptions = False  # a library's line that cannot be written is lost, silently, as ours
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
