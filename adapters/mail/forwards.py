"""Forwarded and replied-to mail: find the notification a person passed on or
answered, and who really sent it.

Handles the inline styles of Gmail (``---------- Forwarded message ---------``),
Outlook (``-----Original Message-----`` or a bare ``From:/Sent:/To:/Subject:``
block, also in German, French, Dutch and Spanish), Apple Mail (``Begin forwarded
message:``) and Thunderbird, with or without ``>`` quoting, messages attached as
``message/rfc822``, and replies that quote the original under an attribution line
(``On … wrote:``, ``Am … schrieb …:``, ``Le … a écrit :``, ``El … escribió:``,
``Op … schreef …:``) or as a bare ``>`` block (see :mod:`.replies`). The result is
a list of layers, outermost first: the reply's own text is never part of the last.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from leadrelay.adapters.mail.message import Mail
from leadrelay.adapters.mail.replies import Quote, find_quote, without_reply_prefix
from leadrelay.adapters.parsing.dates import parse_datetime
from leadrelay.adapters.parsing.text import emails_in

_HEADER_LINE = re.compile(r"^\s*(?P<name>[^\W\d_][\w \-]{0,18}?)\s*:\s*(?P<value>.*)$")
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
    "envoyé le": "date",
    "verzonden": "date",
    "enviado": "date",
    "enviado el": "date",
    "fecha": "date",
    "to": "to",
    "an": "to",
    "à": "to",
    "aan": "to",
    "para": "to",
    "cc": "cc",
    "subject": "subject",
    "betreff": "subject",
    "objet": "subject",
    "onderwerp": "subject",
    "asunto": "subject",
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
    start: int = 0  # the line it begins on: the earliest of a forward and a quote is the outer one


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


def _split_forward(lines: list[str]) -> _Split | None:
    """The forwarded header block and what follows it, if the lines forward a message."""
    start = 0
    while start < len(lines):
        headers, end = _header_block(lines, start)
        if "from" in headers and len(headers.keys() & {"date", "to", "subject", "cc"}) >= 2:
            return _Split(headers, _unquote("\n".join(lines[end:])).strip("\n"), start)
        start = max(end, start + 1)
    return None


def _from_quote(quote: Quote) -> _Split:
    return _Split({"from": quote.attribution}, quote.inner, quote.start)


def _split(text: str) -> _Split | None:
    """What ``text`` passes on: the forward or quoted original that begins first."""
    lines = text.splitlines()
    forward = _split_forward(lines)
    quote = find_quote(lines, before=forward.start if forward else len(lines))
    return _from_quote(quote) if quote is not None else forward


def _inner_layer(layer: Layer) -> Layer | None:
    splits = [split for text in layer.texts if (split := _split(text)) and split.inner.strip()]
    if not splits:
        return None
    headers = splits[0].headers
    addresses = emails_in(headers.get("from", ""))
    date_text = headers.get("date", "")
    return Layer(
        sender=addresses[0].lower() if addresses else "",
        subject=headers.get("subject", "") or without_reply_prefix(layer.subject),
        date=parse_datetime(date_text) if date_text else None,
        message_id="",
        texts=tuple(split.inner for split in splits),
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
