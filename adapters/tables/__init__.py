"""Tables of leads attached to a mail: CSV and XLSX read into rows of text, within caps.

Pure and bounded: at most :data:`MAX_ROWS` rows of :data:`MAX_COLUMNS` columns,
each cell cut to :data:`MAX_CELL_CHARS`; a CSV over :data:`MAX_TABLE_BYTES`, or an
XLSX whose parts would unpack to more than :data:`MAX_UNPACKED_BYTES`, is not read.
What is not read raises :class:`TableError`, which says why in one line.
"""

from __future__ import annotations

from dataclasses import dataclass

from leadrelay.adapters.base import ParseError

MAX_ROWS = 5_000
MAX_COLUMNS = 100
MAX_CELL_CHARS = 2_000
MAX_TABLE_BYTES = 5 * 1024 * 1024
MAX_UNPACKED_BYTES = 50 * 1024 * 1024
MAX_ZIP_MEMBERS = 500

CSV_TYPES = frozenset(
    ("text/csv", "text/comma-separated-values", "application/csv", "text/tab-separated-values")
)
XLSX_TYPES = frozenset(("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",))
CSV_SUFFIXES = (".csv", ".tsv", ".txt")
XLSX_SUFFIXES = (".xlsx", ".xlsm")


class TableError(ParseError):
    """An attached table that cannot be read: too big, not a table, not the format it claims."""


@dataclass(frozen=True, slots=True)
class Row:
    number: int  # as a spreadsheet numbers it: the header row's number + its place below it
    cells: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    headers: tuple[str, ...]
    rows: tuple[Row, ...]


def table_format(name: str, content_type: str) -> str | None:
    """``csv``, ``xlsx`` or None (not a table) by the attachment's name, else its type."""
    lowered = name.lower()
    if lowered.endswith(XLSX_SUFFIXES):
        return "xlsx"
    if lowered.endswith((".csv", ".tsv")):
        return "csv"
    if content_type in XLSX_TYPES:
        return "xlsx"
    if content_type in CSV_TYPES:
        return "csv"
    return None


def cell_text(value: str) -> str:
    return " ".join(value.split())[:MAX_CELL_CHARS]


def framed(name: str, lines: list[tuple[int, list[str]]], header_row: int) -> Table:
    """The table below its header row; ``lines``: (number, cells) as read, empty rows included."""
    if len(lines) < header_row:
        raise TableError(f"{name}: it has no row {header_row} to read the column names from")
    if len(lines) - header_row > MAX_ROWS:
        raise TableError(f"{name}: over {MAX_ROWS:,} rows below the header: split it into smaller files")
    named = [cell_text(c) for c in lines[header_row - 1][1][:MAX_COLUMNS]]
    while named and not named[-1]:  # a sheet's blank columns to the right
        named.pop()
    headers = tuple(named)
    if not any(headers):
        raise TableError(f"{name}: row {header_row} (the header row) is empty")
    rows = []
    for number, cells in lines[header_row:]:
        kept = tuple(cell_text(c) for c in cells[: len(headers)])
        if any(kept):
            rows.append(Row(number, kept))
    return Table(name, headers, tuple(rows))


def read_table(name: str, content_type: str, data: bytes, *, header_row: int = 1) -> Table:
    """The attachment as a table; raises :class:`TableError`."""
    from leadrelay.adapters.tables import delimited, workbook

    kind = table_format(name, content_type)
    if kind == "xlsx":
        return workbook.read_xlsx(name, data, header_row=header_row)
    if kind == "csv":
        return delimited.read_csv(name, data, header_row=header_row)
    raise TableError(f"{name}: not a CSV or XLSX file")
