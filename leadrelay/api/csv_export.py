"""Any admin list as CSV: streamed page by page, bounded, safe to open in a spreadsheet.

A cell that begins with ``= + - @``, a tab or a carriage return would be read as a
formula by Excel, LibreOffice or Google Sheets (CSV injection): it is written with a
leading apostrophe, which those programs show as text. The rows are personal data:
only the authenticated admin API and page offer an export.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

from fastapi.responses import StreamingResponse

EXPORT_CAP = 100_000  # rows in one export; narrow the filters for more
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_ROWS_PER_CHUNK = 200


def cell(value: Any) -> str:
    """One value as CSV text, never a formula."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    text = (
        json.dumps(value, ensure_ascii=False, sort_keys=True)
        if isinstance(value, dict | list)
        else str(value)
    )
    return "'" + text if text.startswith(_FORMULA_START) else text


def lines(columns: tuple[str, ...], rows: Iterable[Any]) -> Iterator[str]:
    """The header, then the rows' ``columns``, a chunk of text at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for n, row in enumerate(rows, start=1):
        writer.writerow([cell(getattr(row, name)) for name in columns])
        if n % _ROWS_PER_CHUNK == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def csv_response(
    filename: str, columns: tuple[str, ...], rows: Callable[[], Iterator[Any]], headers: dict[str, str]
) -> StreamingResponse:
    """Stream ``rows()`` (called when the body is sent, in a worker thread) as a CSV download."""
    return StreamingResponse(
        lines(columns, _lazy(rows)),
        media_type="text/csv; charset=utf-8",
        headers={**headers, "Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _lazy(rows: Callable[[], Iterator[Any]]) -> Iterator[Any]:
    yield from rows()
