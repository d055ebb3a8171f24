"""An RFC 822 message as the few things an adapter reads, whatever its MIME structure.

Text parts are decoded with their declared charset (ISO-8859-1 read as its
superset windows-1252, undeclared or wrong ones retried as UTF-8 then
windows-1252); quoted-printable and base64 are undone by :mod:`email`; HTML is
rendered to lines; ``message/rfc822`` parts (forwarded as attachment) are read
as messages of their own.

Hostile mail is bounded: each part's decoded text is cut to the limits
(:class:`adapters.base.Limits`), all parts and attached messages share one text
budget and read at most :data:`_MAX_MESSAGES` messages, and each header is parsed
from its first :data:`_MAX_HEADER_CHARS` characters (the stdlib's address parser
is quadratic on some long values). A message of more than :data:`MAX_PARTS` MIME
parts is not parsed past its headers (``Mail.unread`` says why): the stdlib parses
every part's headers eagerly, about 0.2 ms a part, so 25 MiB of tiny parts would
hold a worker for minutes.
"""

from __future__ import annotations

import codecs
import contextlib
import email
import email.header
import email.utils
import functools
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from email.message import EmailMessage, Message
from email.policy import EmailPolicy
from itertools import islice
from typing import Any

from leadrelay.adapters.base import Limits, configured_limits
from leadrelay.adapters.mail.html import html_to_text

_LATIN1_ALIASES = frozenset(("iso-8859-1", "iso8859-1", "latin-1", "latin1", "us-ascii", "ascii", "l1"))
_HEADERS_KEPT = (
    "auto-submitted",
    "precedence",
    "list-id",
    "list-unsubscribe",
    "x-autoreply",
    "x-autorespond",
    "x-autoresponder",
    "x-auto-reply",
    "x-auto-response-suppress",
    "content-type",
)
_MAX_DEPTH = 5
_MAX_MESSAGES = 20  # the message and the ones attached to it, read depth first
_MAX_HEADER_CHARS = 998  # RFC 5322's longest line
MAX_PARTS = 200  # a notification, a forward or a reply has a handful
_PART_HEADER = re.compile(rb"(?im)^content-type[ \t]*:")
_HEADERS_END = re.compile(rb"\r?\n\r?\n")


@dataclass(frozen=True)
class Mail:
    subject: str = ""
    sender: str = ""
    sender_name: str = ""
    recipients: tuple[str, ...] = ()
    date: datetime | None = None
    message_id: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    content_types: tuple[str, ...] = ()
    plain: str = ""
    html: str = ""  # rendered to text lines
    links: tuple[str, ...] = ()
    attached: tuple[Mail, ...] = ()
    unread: str = ""  # why the body was not read (too many parts), else empty

    def texts(self) -> tuple[str, ...]:
        """The bodies worth reading, plain text first."""
        return tuple(t for t in (self.plain, self.html) if t.strip())


class _Policy(EmailPolicy):
    """``email.policy.default``, parsing each header from its first characters only."""

    def header_fetch_parse(self, name: str, value: str) -> Any:
        parsed_already = hasattr(value, "name")
        return super().header_fetch_parse(name, value if parsed_already else value[:_MAX_HEADER_CHARS])


_POLICY = _Policy()


@dataclass
class _Budget:
    """What is left to read of one message: text (UTF-8 bytes) and attached messages."""

    limits: Limits
    text: int
    messages: int = _MAX_MESSAGES

    def take_text(self, text: str) -> str:
        """The beginning of ``text`` that fits the part's limit and what is left."""
        limit = min(self.limits.part_text_bytes, self.text)
        data = text.encode("utf-8", "surrogatepass")
        kept = text if len(data) <= limit else data[:limit].decode("utf-8", "ignore")
        self.text -= min(len(data), limit)
        return kept

    def take_message(self) -> bool:
        self.messages -= 1
        return self.messages >= 0


def _header(msg: Message, name: str) -> str:
    try:
        value = msg.get(name)
    except Exception:
        value = None
    if value is None:
        return ""
    try:
        text = " ".join(str(value).split())
        return _redecoded(msg, name) or text if "\ufffd" in text else text
    except Exception:
        parts = email.header.decode_header(str(value))
        return " ".join(
            p.decode(c or "utf-8", "replace") if isinstance(p, bytes) else p for p, c in parts
        ).strip()


def _redecoded(msg: Message, name: str) -> str | None:
    """A header whose encoded words name a charset Python lacks (``=?x-unknown?q?Caf=E9?=``),
    decoded as a text part would be: UTF-8 when valid, else windows-1252."""
    raw = next((str(v)[:_MAX_HEADER_CHARS] for k, v in msg.raw_items() if k.lower() == name.lower()), None)
    if raw is None or "=?" not in raw:
        return None
    try:
        parts = email.header.decode_header(raw)
    except Exception:
        return None
    text = "".join(_decode(p, c) if isinstance(p, bytes) else p for p, c in parts)
    return " ".join(text.split())


def _decode(payload: bytes, charset: str | None) -> str:
    """Text in its declared charset; UTF-8 first when a single-byte one is declared
    (or an unknown one) and the bytes are valid UTF-8 beyond ASCII — a mislabelled
    part, since Latin-1 text is almost never valid UTF-8 by chance."""
    declared = (charset or "").lower()
    if not payload.isascii() and _single_byte_or_unknown(declared):
        with contextlib.suppress(UnicodeDecodeError):
            return payload.decode("utf-8")
    candidates = ["cp1252" if declared in _LATIN1_ALIASES else declared, "utf-8", "cp1252"]
    for name in filter(None, candidates):
        try:
            return payload.decode(name)
        except (LookupError, UnicodeDecodeError):
            continue
    return payload.decode("latin-1")


def _single_byte_or_unknown(declared: str) -> bool:
    if declared in _LATIN1_ALIASES:
        return True
    try:
        name = codecs.lookup(declared).name
    except LookupError:
        return True
    return name.startswith(("cp125", "iso8859", "latin", "ascii", "windows-125", "mac-"))


def _part_text(part: Message, budget: _Budget) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        raw = part.get_payload()
        return budget.take_text(raw) if isinstance(raw, str) else ""
    return budget.take_text(_decode(payload, part.get_content_charset()))


def _date(msg: Message) -> datetime | None:
    value = _header(msg, "date")
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None


def _address(msg: Message, name: str) -> tuple[str, str]:
    display, address = email.utils.parseaddr(_header(msg, name))
    return display.strip(), address.strip().lower()


def _walk(
    msg: Message,
    plain: list[str],
    html: list[str],
    attached: list[Message],
    types: list[str],
    budget: _Budget,
) -> None:
    for part in msg.get_payload() if msg.is_multipart() else [msg]:
        if not isinstance(part, Message):
            continue
        ctype = part.get_content_type()
        types.append(ctype)
        if ctype == "message/rfc822":
            attached.extend(p for p in (part.get_payload() or []) if isinstance(p, Message))
        elif part.is_multipart():
            _walk(part, plain, html, attached, types, budget)
        elif ctype == "text/plain" and part.get_content_disposition() != "attachment":
            plain.append(_part_text(part, budget))
        elif ctype == "text/html" and part.get_content_disposition() != "attachment":
            html.append(_part_text(part, budget))


def _read(msg: Message, depth: int, budget: _Budget) -> Mail:
    plain: list[str] = []
    html: list[str] = []
    attached: list[Message] = []
    types: list[str] = [msg.get_content_type()]
    _walk(msg, plain, html, attached, types, budget)
    rendered, links = html_to_text("\n".join(html)) if html else ("", [])
    sender_name, sender = _address(msg, "from")
    recipients = tuple(
        a.lower() for _, a in email.utils.getaddresses([_header(msg, "to"), _header(msg, "cc")]) if a
    )
    return Mail(
        subject=_header(msg, "subject"),
        sender=sender,
        sender_name=sender_name,
        recipients=recipients,
        date=_date(msg),
        message_id=_header(msg, "message-id"),
        headers={name: _header(msg, name) for name in _HEADERS_KEPT if _header(msg, name)},
        content_types=tuple(types),
        plain="\n".join(plain).replace("\r\n", "\n").replace("\r", "\n"),
        html=rendered,
        links=tuple(links),
        attached=tuple(_read(m, depth + 1, budget) for m in attached if budget.take_message())
        if depth < _MAX_DEPTH
        else (),
    )


def read_mail(raw: bytes, limits: Limits | None = None) -> Mail:
    """Everything an adapter reads from one RFC 822 message (never raises on odd input).

    ``limits``: the process's settings when not given. A message is read once: the
    inbox's import asks for the same mail three times (which channel, how many leads,
    what the worker will make of it), so the last two readings are kept (a ``Mail``
    is frozen) and the same bytes with the same limits get the same reading back.
    """
    return _read_once(raw, limits or configured_limits())


@functools.lru_cache(maxsize=2)  # one mail in hand at a time; bytes over the size limit are never read whole
def _read_once(raw: bytes, chosen: Limits) -> Mail:
    if too_many_parts(raw):
        headers_only = _HEADERS_END.split(raw, maxsplit=1)[0] + b"\r\n\r\n"
        msg: EmailMessage | Message = email.message_from_bytes(headers_only, policy=_POLICY)
        read = _read(msg, 0, _Budget(chosen, chosen.mail_text_bytes, messages=0))
        return replace(read, unread=f"it has over {MAX_PARTS} MIME parts")
    msg = email.message_from_bytes(raw, policy=_POLICY)
    return _read(msg, 0, _Budget(chosen, chosen.mail_text_bytes, messages=_MAX_MESSAGES - 1))


def too_many_parts(raw: bytes) -> bool:
    """More Content-Type headers than a mail a person or a portal sends (counted in one pass)."""
    # one Content-Type for the message itself, one for each part
    return next(islice(_PART_HEADER.finditer(raw), MAX_PARTS + 1, None), None) is not None
