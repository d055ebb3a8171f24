"""One row of an attached table of leads: its cells by the channel's column mapping, then by meaning.

A row is stored as its own ledger item (worker/imap/intake.py), JSON of type
:data:`ROW_CONTENT_TYPE`: the attachment's name, the row's number and its
(column, cell) pairs. Columns named in ``parse.attachments.columns`` are read
first; the others when their name is one of the channel's labels ("Email",
"Telefon", "Desks"). What cannot be read names the row and the column, never
the value (leads are personal data).
"""

from __future__ import annotations

import json
import re
from typing import Any

from leadrelay.adapters.base import ParseError
from leadrelay.adapters.fields import Found
from leadrelay.adapters.parsing.labels import fold
from leadrelay.adapters.spec import PortalSpec
from leadrelay.adapters.tables import Row, Table

ROW_CONTENT_TYPE = "application/vnd.leadrelay.row+json"
_MAPPED = (20, 1, 0)  # a configured column beats any label
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_CONTACT = ("contact.email", "contact.phone")


def row_body(table: Table, row: Row) -> bytes:
    """The ledger item of one row: what :func:`read_row` reads."""
    cells = [[header, row.cells[i] if i < len(row.cells) else ""] for i, header in enumerate(table.headers)]
    data = {"attachment": table.name, "row": row.number, "cells": cells}
    return json.dumps(data, ensure_ascii=False).encode("utf-8")


def _cells(body: bytes) -> tuple[str, list[tuple[str, str]]]:
    try:
        data: Any = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise ParseError("the row is not JSON: edit it as the attachment's row JSON") from None
    cells = data.get("cells") if isinstance(data, dict) else None
    if not isinstance(cells, list) or not all(
        isinstance(c, list) and len(c) == 2 and all(isinstance(x, str) for x in c) for c in cells
    ):
        raise ParseError('the row must be {"attachment": …, "row": …, "cells": [[column, value], …]}')
    where = f"{data.get('attachment') or 'attachment'} row {data.get('row', '?')}"
    return where, [(c[0], c[1]) for c in cells]


def mapped_columns(spec: PortalSpec, headers: tuple[str, ...] | list[str]) -> dict[str, str]:
    """Each header's field: by the channel's column mapping, else by its label table."""
    wanted = {fold(name): field for field, names in spec.columns.items() for name in reversed(names)}
    fields: dict[str, str] = {}
    for header in headers:
        field = wanted.get(fold(header))
        if field is None:
            match = spec.labels.match(header) if header.strip() else None
            field = match.field if match is not None else None
        if field is not None:
            fields[header] = field
    return fields


def is_lead_table(spec: PortalSpec, table: Table) -> bool:
    """A table is one of leads when a column holds a contact's e-mail or phone."""
    return any(field in _CONTACT for field in mapped_columns(spec, table.headers).values())


def read_row(body: bytes, spec: PortalSpec) -> Found:
    where, cells = _cells(body)
    wanted = {fold(name): field for field, names in spec.columns.items() for name in names}
    found = Found()
    columns: dict[str, list[str]] = {}
    emails: list[tuple[str, bool]] = []
    for header, value in cells:
        field = wanted.get(fold(header))
        if field is not None:
            found.offer(field, value, header, _MAPPED)
        else:
            match = spec.labels.match(header) if header.strip() else None
            if match is None:
                continue
            field = match.field
            found.offer(field, value, header, match.score)
        columns.setdefault(field, []).append(header)
        if field == "contact.email" and value.strip():
            emails.append((header, bool(_EMAIL.search(value))))
    if emails and not any(ok for _, ok in emails) and not found.has("contact.phone"):
        raise ParseError(f"{where}: column {emails[0][0]!r} (contact.email) does not hold an e-mail address")
    if not any(found.has(field) for field in _CONTACT):
        named = [f"{h!r}" for field in _CONTACT for h in columns.get(field, [])]
        plural = len(named) > 1
        why = (
            f"the column{'s' if plural else ''} {' and '.join(named)} {'are' if plural else 'is'} empty"
            if named
            else "no column is mapped to contact.email or contact.phone (set parse.attachments.columns)"
        )
        raise ParseError(f"{where}: no e-mail address or phone number: {why}")
    return found


def row_place(body: bytes) -> str:
    """``leads.csv row 7`` for a stored row (for messages about it)."""
    try:
        return _cells(body)[0]
    except ParseError:
        return "the row"
