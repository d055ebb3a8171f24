"""The files attached to a mail: named, typed and sized for the ledger, their bytes for the readers.

Text and HTML parts that are the mail's body, and ``message/rfc822`` parts (a
forwarded mail, read by :mod:`adapters.mail.message`), are not attachments. A
mail of more than :data:`~adapters.mail.message.MAX_PARTS` parts is not walked
(the reader refuses it too).
"""

from __future__ import annotations

import email
from dataclasses import dataclass
from email.message import Message
from email.policy import default
from itertools import islice
from typing import Any

from leadrelay.adapters.mail.message import too_many_parts

MAX_LISTED = 20  # attachments named in a lead's raw meta; more are counted
_NAME_CHARS = 120


@dataclass(frozen=True, slots=True)
class Attachment:
    name: str
    content_type: str
    data: bytes

    def described(self) -> dict[str, Any]:
        """What the ledger keeps of it in the lead's ``raw_meta`` (the bytes stay in the raw mail)."""
        return {"name": self.name, "type": self.content_type, "bytes": len(self.data)}


def _name(part: Message, index: int) -> str:
    try:
        name = part.get_filename()
    except Exception:  # a malformed RFC 2231 parameter
        name = None
    cleaned = " ".join(str(name or "").replace("/", "_").replace("\\", "_").split())[:_NAME_CHARS]
    return cleaned or f"attachment-{index}"


def _is_attachment(part: Message) -> bool:
    ctype = part.get_content_type()
    if part.is_multipart() or ctype == "message/rfc822":
        return False
    disposition = part.get_content_disposition()
    if ctype in ("text/plain", "text/html"):
        return disposition == "attachment"
    return disposition in ("attachment", "inline") or bool(part.get_param("name"))


def attachments_of(raw: bytes) -> list[Attachment]:
    """Every attached file of the message and of the messages forwarded inside it, in order."""
    if too_many_parts(raw):
        return []
    msg = email.message_from_bytes(raw, policy=default)
    found: list[Attachment] = []
    for index, part in enumerate(islice(msg.walk(), 1, None), start=1):
        if not _is_attachment(part):
            continue
        try:
            payload = part.get_payload(decode=True)
        except Exception:
            payload = None
        data = payload if isinstance(payload, bytes) else b""
        found.append(Attachment(_name(part, index), part.get_content_type(), data))
    return found


def described(attachments: list[Attachment]) -> dict[str, Any]:
    """The ``raw_meta`` entries that list a mail's attachments (none: nothing)."""
    if not attachments:
        return {}
    listed = [a.described() for a in attachments[:MAX_LISTED]]
    extra = {"attachments_more": len(attachments) - MAX_LISTED} if len(attachments) > MAX_LISTED else {}
    return {"attachments": listed, **extra}
