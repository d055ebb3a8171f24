"""One mail, several leads: a digest's blocks and the rows of attached tables, as pieces.

Pure: the mail in, its pieces out — each piece a body the channel's adapter reads
as one lead (a digest block as a mail of its own, ``message/rfc822``; a table row
as JSON, :data:`~adapters.from_row.ROW_CONTENT_TYPE`). The worker records each
piece as its own ledger item (worker/imap/intake.py), so each is deduplicated,
delivered and, when unreadable, dead-lettered on its own.

A mail is split when an attached CSV or XLSX has a contact column (an e-mail or a
phone, by the channel's ``parse.attachments.columns`` or its labels), else when
its text is a digest (:mod:`adapters.digest`). Other attachments (PDFs, images)
are listed, never read.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from typing import Literal

from leadrelay.adapters.base import Adapter, Limits
from leadrelay.adapters.digest import MAX_BLOCKS, digest_blocks
from leadrelay.adapters.from_email import exact_field
from leadrelay.adapters.from_row import ROW_CONTENT_TYPE, is_lead_table, row_body
from leadrelay.adapters.mail.attachments import Attachment, attachments_of
from leadrelay.adapters.mail.classify import not_a_lead
from leadrelay.adapters.mail.forwards import Layer, unwrap
from leadrelay.adapters.mail.message import Mail, read_mail
from leadrelay.adapters.parsing.labels import fold
from leadrelay.adapters.portal import PART_HEADER, PortalAdapter
from leadrelay.adapters.spec import PortalSpec
from leadrelay.adapters.tables import Row, Table, TableError, read_table, table_format

MAIL_CONTENT_TYPE = "message/rfc822"


@dataclass(frozen=True, slots=True)
class Piece:
    part: str  # for people: "lead 2 of 5", "leads.csv row 7"
    key: str  # distinguishes it: within its mail ("lead-2") or, by_content, anywhere ("row-<sha256>")
    body: bytes
    content_type: str
    by_content: bool = False  # a row: the same row re-sent in another mail is the same item


@dataclass(frozen=True)
class Split:
    kind: Literal["digest", "table"] | None = None  # None: one mail, one lead
    pieces: tuple[Piece, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    problems: tuple[str, ...] = ()  # tables of leads that could not be read, one line each


def _row_key(table: Table, row: Row) -> str:
    content = json.dumps([[fold(h) for h in table.headers], list(row.cells)], ensure_ascii=False)
    return "row-" + hashlib.sha256(content.encode("utf-8")).hexdigest()


def _tables(spec: PortalSpec, attachments: list[Attachment]) -> tuple[list[Piece], list[str]]:
    pieces: list[Piece] = []
    problems: list[str] = []
    for attachment in attachments:
        if table_format(attachment.name, attachment.content_type) is None:
            continue
        try:
            table = read_table(
                attachment.name, attachment.content_type, attachment.data, header_row=spec.header_row
            )
        except TableError as err:
            if spec.columns:  # a channel that expects tables of leads is told; others keep the file
                problems.append(str(err))
            continue
        if is_lead_table(spec, table):
            pieces.extend(
                Piece(
                    f"{table.name} row {row.number}",
                    _row_key(table, row),
                    row_body(table, row),
                    ROW_CONTENT_TYPE,
                    True,
                )
                for row in table.rows
            )
    return pieces, problems


def _block_mail(mail: Mail, lead: Layer, block: str, part: str) -> bytes:
    """A digest's block as a mail of its own: the notification's sender, subject and date, no Message-ID."""
    msg = EmailMessage()
    msg["From"] = lead.sender or mail.sender
    if mail.recipients:
        msg["To"] = ", ".join(mail.recipients)
    msg["Subject"] = " ".join((lead.subject or mail.subject).split())
    when = lead.date or mail.date
    if when is not None:
        msg["Date"] = format_datetime(when)
    msg[PART_HEADER] = part
    msg.set_content(block + "\n")
    return msg.as_bytes(policy=SMTP)


def _digest(spec: PortalSpec, raw: bytes, limits: Limits) -> list[Piece] | str:
    mail = read_mail(raw, limits)
    if mail.unread:
        return []
    layers = unwrap(mail)
    lead = layers[-1]
    if not_a_lead(mail, tuple(layer.subject for layer in layers)):
        return []
    text = next((t for t in lead.texts if t.strip()), "")
    blocks = digest_blocks(text, lambda label: exact_field(spec, label), spec.digest_separator)
    if len(blocks) > MAX_BLOCKS:
        return f"a digest of {len(blocks)} leads, over the {MAX_BLOCKS} read from one mail"
    count = len(blocks)
    return [
        Piece(
            f"lead {i} of {count}",
            f"lead-{i}",
            _block_mail(mail, lead, block, f"lead {i} of {count}"),
            MAIL_CONTENT_TYPE,
        )
        for i, block in enumerate(blocks, start=1)
    ]


def split_mail(spec: PortalSpec, raw: bytes, limits: Limits) -> Split:
    """The leads one mail holds when it holds several (never raises on odd mail)."""
    if len(raw) > limits.message_bytes or raw.startswith(b"{"):
        return Split()
    attachments = attachments_of(raw)
    rows, problems = _tables(spec, attachments)
    if rows or problems:
        return Split("table", tuple(rows), tuple(attachments), tuple(problems))
    found = _digest(spec, raw, limits)
    if isinstance(found, str):
        return Split("digest", (), tuple(attachments), (found,))
    if found:
        return Split("digest", tuple(found), tuple(attachments))
    return Split(attachments=tuple(attachments))


def split_item(adapter: Adapter, raw: bytes, limits: Limits) -> Split:
    """:func:`split_mail` with the channel's adapter; a hand-written (non-portal) adapter reads one lead."""
    try:
        if isinstance(adapter, PortalAdapter):
            return split_mail(adapter.spec, raw, limits)
        return Split(attachments=tuple(attachments_of(raw)))
    except Exception:  # a splitter bug must not stop an inbox: the mail is read as one lead
        return Split()
