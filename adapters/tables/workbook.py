"""XLSX attachments: the first sheet, read by openpyxl in read-only mode, zip-bomb safe.

An XLSX is a zip of XML parts. Before openpyxl opens it, the declared unpacked
sizes of its members are added up and checked against
:data:`~adapters.tables.MAX_UNPACKED_BYTES` (:mod:`zipfile` never unpacks a
member past its declared size, so the declaration is a cap, not a promise).
Values come as the sheet last computed them (``data_only``): numbers without a
spurious ``.0``, dates as ISO dates.
"""

from __future__ import annotations

import io
import zipfile
from datetime import date, datetime, time
from typing import Any

from leadrelay.adapters.tables import (
    MAX_COLUMNS,
    MAX_ROWS,
    MAX_TABLE_BYTES,
    MAX_UNPACKED_BYTES,
    MAX_ZIP_MEMBERS,
    Table,
    TableError,
    framed,
)


def _check_zip(name: str, data: bytes) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as err:
        raise TableError(f"{name}: not an XLSX file ({err})") from None
    if len(members) > MAX_ZIP_MEMBERS:
        raise TableError(f"{name}: {len(members):,} parts in the XLSX, over {MAX_ZIP_MEMBERS}")
    unpacked = sum(m.file_size for m in members)
    if unpacked > MAX_UNPACKED_BYTES:
        raise TableError(
            f"{name}: it would unpack to {unpacked:,} bytes, over the {MAX_UNPACKED_BYTES:,}-byte limit"
        )


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def read_xlsx(name: str, data: bytes, *, header_row: int = 1) -> Table:
    if len(data) > MAX_TABLE_BYTES:
        raise TableError(f"{name}: {len(data):,} bytes, over the {MAX_TABLE_BYTES:,}-byte limit for a table")
    _check_zip(name, data)
    from openpyxl import load_workbook  # imported when a workbook arrives: most mail has none

    lines: list[tuple[int, list[str]]] = []
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            sheet = book.worksheets[0]
            for number, values in enumerate(sheet.iter_rows(values_only=True, max_col=MAX_COLUMNS), start=1):
                if number > MAX_ROWS + header_row:
                    raise TableError(
                        f"{name}: over {MAX_ROWS:,} rows below the header: split it into smaller files"
                    )
                lines.append((number, [_text(v) for v in values]))
        finally:
            book.close()
    except TableError:
        raise
    except Exception as err:  # openpyxl raises many kinds on a broken workbook
        raise TableError(f"{name}: not a readable XLSX file ({type(err).__name__})") from None
    return framed(name, lines, header_row)
