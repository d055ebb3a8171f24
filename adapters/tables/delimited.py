"""CSV (and TSV) attachments: the encoding and the delimiter found, not guessed at length.

The encoding is UTF-8 (with or without a byte-order mark), else windows-1252, the
one spreadsheet programs save in on Western Windows. The delimiter is whichever
of ``,`` ``;`` and tab the header line holds most of outside quotes — one pass,
where :class:`csv.Sniffer` tries regular expressions that can take long on a
hostile line.
"""

from __future__ import annotations

import csv
import io

from leadrelay.adapters.tables import MAX_COLUMNS, MAX_ROWS, MAX_TABLE_BYTES, Table, TableError, framed

DELIMITERS = (",", ";", "\t")
_FIELD_LIMIT = 64 * 1024  # a longer cell is a broken quote swallowing the file


def decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def delimiter_of(first_line: str) -> str:
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for char in first_line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def read_csv(name: str, data: bytes, *, header_row: int = 1) -> Table:
    if len(data) > MAX_TABLE_BYTES:
        raise TableError(f"{name}: {len(data):,} bytes, over the {MAX_TABLE_BYTES:,}-byte limit for a table")
    if b"\x00" in data[:4096]:
        raise TableError(f"{name}: binary data, not a CSV file")
    text = decode(data)
    lines_of_text = text.splitlines()
    first = next((line for line in lines_of_text[header_row - 1 :] if line.strip()), "")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter_of(first), strict=False)
    limit = csv.field_size_limit()
    csv.field_size_limit(_FIELD_LIMIT)
    lines: list[tuple[int, list[str]]] = []
    try:
        for number, cells in enumerate(reader, start=1):
            if number > MAX_ROWS + header_row:
                raise TableError(
                    f"{name}: over {MAX_ROWS:,} rows below the header: split it into smaller files"
                )
            lines.append((number, cells[:MAX_COLUMNS]))
    except csv.Error as err:
        raise TableError(f"{name}: not a readable CSV file near row {len(lines) + 1} ({err})") from None
    finally:
        csv.field_size_limit(limit)
    return framed(name, lines, header_row)
