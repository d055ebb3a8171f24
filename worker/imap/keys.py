"""Intake keys for mail: the same notification is recognised at the door, whichever
mailbox, folder or UIDVALIDITY it is found under.

* ``mail-id:<digest>`` — the SHA-256 of the normalised Message-ID (the domain
  part is case-insensitive, the local part is not). Digested, not kept as it is:
  some mailers build Message-IDs from the sender's name, and the intake key
  outlives the retention purge of personal data;
* ``mail-id:<digest>#<body digest>`` — a *different* message reusing a
  Message-ID (some mailers do): recorded, never mistaken for the first;
* ``mail-sha256:<digest>`` — no Message-ID: sender, recipients, date, subject
  and body, leaving out the trace headers each mailbox adds on delivery;
* ``<mail key>#lead-<n>`` — the n-th lead of a digest (adapters/pieces.py):
  re-polling the digest finds its own key first and adds nothing;
* ``mail-row:<digest>`` — a row of an attached table of leads, by the channel and
  the row's content (column names and cells) alone: a broker who re-sends the same
  CSV in a new mail adds nothing either, and two identical rows are one lead.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32

_ANGLE = re.compile(r"<([^<>\s]+)>")
_SPACE = re.compile(r"\s")
_SPLIT = re.compile(rb"\r?\n\r?\n")
_IDENTITY_HEADERS = ("from", "to", "cc", "date", "subject")
_KEY_NAMES = ("message-id", *_IDENTITY_HEADERS)
_KEY_FIELDS = frozenset(name.encode() for name in _KEY_NAMES)
_FIELD = re.compile(rb"([\041-\071\073-\176]*):")  # a header line, as the email package's parser reads one


@dataclass(frozen=True, slots=True)
class MailKeys:
    primary: str
    reused_id: str | None  # the key for another message that carries the same Message-ID
    body_sha256: str
    message_id: str | None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _headers(raw: bytes) -> Message:
    return BytesHeaderParser(policy=compat32).parsebytes(raw)


def _key_fields(block: bytes) -> dict[str, str]:
    """The values of the fields the keys read, as the email package's parser reads them.

    Only the lines of those fields (with their continuation lines) are read — a
    notification carries twenty-odd others (Received, DKIM-Signature…). The usual
    block (every line a header line, those fields in ASCII) is read here directly
    (:func:`_read_fields`); any other is handed to the parser, which then reads it
    the same way exactly: a block with a line that is no header line (where the
    parser would stop and take the rest as body) is parsed whole.
    """
    kept: list[bytes] = []
    keep = False
    for line in block.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t"):
            if keep:
                kept.append(line)
            continue
        field = _FIELD.match(line)
        if field is None:
            return _parsed_fields(_headers(block + b"\r\n\r\n"))
        keep = field.group(1).lower() in _KEY_FIELDS
        if keep:
            kept.append(line)
    values = _read_fields(kept)
    return values if values is not None else _parsed_fields(_headers(b"".join(kept) + b"\r\n\r\n"))


def _read_fields(lines: list[bytes]) -> dict[str, str] | None:
    """What the parser (compat32) gives for these header lines, read directly; None: not all ASCII.

    A field's value is its first occurrence's text after the colon with its
    continuation lines, whitespace collapsed (:func:`_header`).
    """
    found: dict[str, list[bytes]] = {}
    current: list[bytes] | None = None
    for line in lines:
        if line[:1] in (b" ", b"\t"):
            if current is not None:
                current.append(line)
            continue
        name, _, value = line.partition(b":")
        current = None
        key = name.lower().decode("ascii", "replace")
        if key not in found:
            current = found[key] = [value]
    values = dict.fromkeys(_KEY_NAMES, "")
    for key, parts in found.items():
        text = b"".join(parts)
        if not text.isascii():
            return None  # the parser makes a Header of unknown-8bit text: it reads those
        values[key] = " ".join(text.decode("ascii").split())
    return values


def _parsed_fields(headers: Message) -> dict[str, str]:
    return {name: _header(headers, name) for name in _KEY_NAMES}


def _header(headers: Message, name: str) -> str:
    try:
        value = headers.get(name)
    except Exception:  # a malformed header must not stop the intake
        return ""
    return " ".join(str(value).split()) if value is not None else ""


def normalised_message_id(value: str) -> str | None:
    match = _ANGLE.search(value)
    found = match.group(1) if match else value.strip()
    if not found or _SPACE.search(found):  # whitespace as str.isspace() has it
        return None
    local, at, domain = found.rpartition("@")
    return f"{local}@{domain.lower()}" if at else found


def message_id_key(message_id: str) -> str:
    """The intake key of a mail by its Message-ID (normalised or as in the header)."""
    normalised = normalised_message_id(message_id) or message_id
    return "mail-id:" + _sha256(normalised.encode("utf-8", "surrogateescape"))


def _body_sha256(body: bytes) -> str:
    return _sha256(body.replace(b"\r\n", b"\n").rstrip())


def body_sha256(raw: bytes) -> str:
    """A digest of the body alone: the same whichever mailbox the message was delivered to."""
    parts = _SPLIT.split(raw, maxsplit=1)
    return _body_sha256(parts[1] if len(parts) == 2 else b"")


def header_block(raw: bytes) -> bytes:
    """The message's headers alone, as a message with an empty body."""
    return _SPLIT.split(raw, maxsplit=1)[0] + b"\r\n\r\n"


def mail_keys(raw: bytes) -> MailKeys:
    """The message's intake keys, from its header block and a digest of its body (nothing else read)."""
    parts = _SPLIT.split(raw, maxsplit=1)
    fields = _key_fields(parts[0])  # nothing walks the body, nor the other fields
    digest = _body_sha256(parts[1] if len(parts) == 2 else b"")
    message_id = normalised_message_id(fields["message-id"])
    if message_id is not None:
        key = message_id_key(message_id)
        return MailKeys(key, f"{key}#{digest[:32]}", digest, message_id)
    identity = "\n".join(fields[name] for name in _IDENTITY_HEADERS)
    content = _sha256(f"{identity}\n{digest}".encode("utf-8", "surrogateescape"))
    return MailKeys(f"mail-sha256:{content}", None, digest, None)


def piece_key(mail_key: str, channel: str, piece: str, *, by_content: bool) -> str:
    """The intake key of one lead of a mail that holds several (see the module's note)."""
    if by_content:
        return "mail-row:" + _sha256(f"{channel}\n{piece}".encode("utf-8", "surrogateescape"))
    return f"{mail_key}#{piece}"
