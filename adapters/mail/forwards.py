"""Forwarded mail: find the notification a person passed on, and who really sent it.

Handles the inline styles of Gmail (``---------- Forwarded message ---------``),
Outlook (``-----Original Message-----`` or a bare ``From:/Sent:/To:/Subject:``
block, also German ``Von:/Gesendet:/An:/Betreff:``), Apple Mail (``Begin forwarded
message:``) and Thunderbird, with or without ``>`` quoting, and messages attached
as ``message/rfc822``. The result is a list of layers, outermost first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from leadrelay.adapters.mail.message import Mail
from leadrelay.adapters.parsing.dates import parse_datetime
from leadrelay.adapters.parsing.text import emails_in

_HEADER_LINE = re.compile(r"^\s*(?P<name>[A-Za-zÄÖÜäöü][\w \-]{0,18}?)\s*:\s*(?P<value>.*)$")
_HEADER_NAMES = {
    "from": "from",
    "von": "from",
    "de": "from",
    "van": "from",
    "sent": "date",
    "date": "date",
    "gesendet": "date",
    "datum": "date",
    "envoyé": "date",
    "to": "to",
    "an": "to",
    "à": "to",
    "cc": "cc",
    "subject": "subject",
    "betreff": "subject",
    "objet": "subject",
    "reply-to": "reply-to",
    "antwort an": "reply-to",
}
# Blank lines before a ">" go with it, as a line start's \s* spans them. A run of
# blank lines not followed by ">" is matched too (and kept): tried again from each
# of its lines, the search would be quadratic.
_QUOTE = re.compile(r"^(\s*+)(>\s?)?", re.MULTILINE)
_MAX_LAYERS = 6


@dataclass(frozen=True)
class Layer:
    """One message in a forwarding chain."""

    sender: str
    subject: str
    date: datetime | None
    message_id: str
    texts: tuple[str, ...]
    links: tuple[str, ...]


@dataclass(frozen=True)
class _Split:
    headers: dict[str, str]
    inner: str


def _unquoted(match: re.Match[str]) -> str:
    return "" if match.group(2) else match.group(1)


def _unquote(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    if lines and sum(line.lstrip().startswith(">") for line in lines) >= len(lines) * 0.8:
        return _QUOTE.sub(_unquoted, text)
    return text


def _header_block(lines: list[str], start: int) -> tuple[dict[str, str], int]:
    headers: dict[str, str] = {}
    end = start
    while end < len(lines):
        match = _HEADER_LINE.match(lines[end].lstrip("> \t*"))
        name = _HEADER_NAMES.get(match.group("name").strip().lower()) if match else None
        if match is None or name is None:
            break
        headers.setdefault(name, match.group("value").replace("*", "").strip())
        end += 1
    return headers, end


def _split_forward(text: str) -> _Split | None:
    """The forwarded header block and what follows it, if ``text`` forwards a message."""
    lines = text.splitlines()
    start = 0
    while start < len(lines):
        headers, end = _header_block(lines, start)
        if "from" in headers and len(headers.keys() & {"date", "to", "subject", "cc"}) >= 2:
            return _Split(headers, _unquote("\n".join(lines[end:])).strip("\n"))
        start = max(end, start + 1)
    return None


def _inner_layer(layer: Layer) -> Layer | None:
    splits = [(split, text) for text in layer.texts if (split := _split_forward(text))]
    if not splits:
        return None
    headers = splits[0][0].headers
    addresses = emails_in(headers.get("from", ""))
    date_text = headers.get("date", "")
    return Layer(
        sender=addresses[0].lower() if addresses else "",
        subject=headers.get("subject", ""),
        date=parse_datetime(date_text) if date_text else None,
        message_id="",
        texts=tuple(split.inner for split, _ in splits),
        links=layer.links,
    )


def layer_of(mail: Mail) -> Layer:
    return Layer(mail.sender, mail.subject, mail.date, mail.message_id, mail.texts(), mail.links)


def unwrap(mail: Mail) -> list[Layer]:
    """The forwarding chain, outermost first; the last layer is the original message."""
    layers = [layer_of(mail)]
    while len(layers) < _MAX_LAYERS:
        if mail.attached:
            mail = mail.attached[0]
            layers.append(layer_of(mail))
            continue
        inner = _inner_layer(layers[-1])
        if inner is None:
            break
        layers.append(inner)
    return layers
