"""A lead's raw input taken apart for a person to read, never to run.

A mail (``message/rfc822``) becomes its headers and a list of MIME parts: text parts
decoded to text, HTML parts as their visible text and their source (both shown as
text by the page's autoescaping, never rendered), every other part listed with its
type, file name and size only. Anything else is its body as text. Bounded: at most
``MAX_PARTS`` parts and ``MAX_TEXT`` characters of each are kept.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass, field
from email.message import Message

from bs4 import BeautifulSoup

MAX_PARTS = 40
MAX_TEXT = 60_000
MAX_HEADERS = 80
MAIL_TYPE = "message/rfc822"


@dataclass(frozen=True, slots=True)
class Part:
    number: str  # 1, 2, 2.1 …: where it sits in the mail
    content_type: str
    size: int  # bytes of the decoded payload
    filename: str | None = None
    text: str | None = None  # a text part's text; an HTML part's visible text
    source: str | None = None  # an HTML part's markup, to be shown escaped
    attachment: bool = False
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class RawInput:
    size: int
    content_type: str | None
    purged: bool = False
    text: str | None = None  # a body that is not a mail, as text
    headers: list[tuple[str, str]] = field(default_factory=list)
    parts: list[Part] = field(default_factory=list)
    more_parts: int = 0

    @property
    def is_mail(self) -> bool:
        return bool(self.headers or self.parts)


def _clip(text: str) -> tuple[str, bool]:
    return (text[:MAX_TEXT], len(text) > MAX_TEXT)


def _decoded(part: Message) -> bytes:
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _as_text(part: Message, payload: bytes) -> str:
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:  # a charset Python does not know
        return payload.decode("utf-8", errors="replace")


def _part(number: str, part: Message) -> Part:
    payload = _decoded(part)
    kind = part.get_content_type()
    filename = part.get_filename()
    attachment = part.get_content_disposition() == "attachment" or (
        filename is not None and not kind.startswith("text/")
    )
    if attachment or not kind.startswith("text/"):
        return Part(number, kind, len(payload), filename=filename, attachment=True)
    text = _as_text(part, payload)
    if kind == "text/html":
        visible = BeautifulSoup(text, "html.parser").get_text("\n", strip=True)
        shown, cut = _clip(visible)
        source, cut_source = _clip(text)
        return Part(number, kind, len(payload), filename, shown, source, truncated=cut or cut_source)
    shown, cut = _clip(text)
    return Part(number, kind, len(payload), filename, shown, truncated=cut)


def _walk(message: Message, prefix: str = "") -> list[tuple[str, Message]]:
    """The leaf parts of a mail, numbered as IMAP numbers them (1, 2, 2.1 …)."""
    if not message.is_multipart():
        return [(prefix or "1", message)]
    found: list[tuple[str, Message]] = []
    children = message.get_payload()
    assert isinstance(children, list)
    for i, child in enumerate(children, start=1):
        number = f"{prefix}.{i}" if prefix else str(i)
        found.extend(_walk(child, number) if child.is_multipart() else [(number, child)])
        if len(found) > MAX_PARTS:
            break
    return found


def read_raw(body: bytes | None, content_type: str | None) -> RawInput:
    """``body`` (None once purged) as a person should see it."""
    if body is None:
        return RawInput(size=0, content_type=content_type, purged=True)
    if (content_type or "").split(";")[0].strip().lower() != MAIL_TYPE:
        text, _ = _clip(body.decode("utf-8", errors="replace"))
        return RawInput(size=len(body), content_type=content_type, text=text)
    message = email.message_from_bytes(body, policy=email.policy.compat32)
    headers = [(name, str(value)) for name, value in list(message.items())[:MAX_HEADERS]]
    leaves = _walk(message)
    parts = [_part(number, part) for number, part in leaves[:MAX_PARTS]]
    return RawInput(
        size=len(body),
        content_type=content_type,
        headers=headers,
        parts=parts,
        more_parts=max(0, len(leaves) - MAX_PARTS),
    )
