"""``Label: value`` pairs from text lines, however the mailer laid them out."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from leadrelay.adapters.parsing.text import clean, sections

_COLON = re.compile(r"^(?P<label>[^:：\t\n]{1,60}?)\s*[:：]\s*(?P<value>.*)$")
_DECORATION = re.compile(r"^[\s>*•\-–·]+")
_MAX_LABEL_WORDS = 7


@dataclass(frozen=True, slots=True)
class Pair:
    label: str
    value: str
    more: tuple[str, ...] = ()  # the lines after the value, for multi-line fields

    def full_value(self) -> str:
        return "\n".join((self.value, *self.more)).strip()


def _looks_like_label(label: str) -> bool:
    words = label.split()
    return (
        0 < len(words) <= _MAX_LABEL_WORDS
        and any(ch.isalpha() for ch in label)
        and "://" not in label
        and "@" not in label
    )


def _split(segment: str) -> tuple[str, str] | None:
    if "\t" in segment:
        label, _, value = segment.partition("\t")
        label = label.rstrip(" :：")
        if _looks_like_label(label):
            return clean(label), value.replace("\t", " ").strip()
    match = _COLON.match(segment)
    if match and _looks_like_label(match.group("label")) and not match.group("value").startswith("//"):
        return clean(match.group("label")), match.group("value").replace("\t", " ").strip()
    return None


def _never(_line: str) -> bool:
    return False


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.split("\t")]


def _is_label_cell(cell: str, is_label: Callable[[str], bool]) -> bool:
    bare = cell.rstrip(" :：")
    return bool(bare) and (is_label(bare) or (cell.endswith((":", "：")) and _looks_like_label(bare)))


def _table_rows(lines: list[str], is_label: Callable[[str], bool]) -> list[str]:
    """Table rows rendered as tab-separated cells, rewritten as one ``Label<TAB>value`` line a pair.

    Two layouts besides the plain two-cell row: several pairs side by side
    (``Name | Jo | Desks | 8``), split where a cell is a known label; and a header
    row of labels over one row of values (``Name | Email`` over ``Jo | jo@…``),
    read column by column. Every line is looked at once or twice: linear.
    """
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if "\t" not in line:
            out.append(line)
            continue
        cells = _cells(line)
        if len(cells) >= 2 and all(_is_label_cell(cell, is_label) for cell in cells):
            following = next((i for i in range(index, min(index + 3, len(lines))) if lines[i].strip()), None)
            values = _cells(lines[following]) if following is not None and "\t" in lines[following] else []
            after = (
                next(
                    (i for i in range(following + 1, min(following + 4, len(lines))) if lines[i].strip()),
                    None,
                )
                if following is not None
                else None
            )
            single = after is None or "\t" not in lines[after] or len(_cells(lines[after])) != len(cells)
            if following is not None and len(values) == len(cells) and single:
                out.extend(f"{label}\t{value}" for label, value in zip(cells, values, strict=True))
                index = following + 1
                continue
        if len(cells) >= 4 and len(cells) % 2 == 0 and all(_is_label_cell(c, is_label) for c in cells[::2]):
            out.extend(f"{cells[i]}\t{cells[i + 1]}" for i in range(0, len(cells), 2))
            continue
        out.append(line)
    return out


def pairs_in(text: str, is_label: Callable[[str], bool] = _never) -> list[Pair]:
    """Every labelled value in ``text``; a label alone on its line takes the next line.

    ``is_label`` recognises labels written without a colon (``Name`` over
    ``Priya Raman``), which only the portal's label table can tell from text.
    """
    pairs: list[Pair] = []
    label: str | None = None
    value = ""
    more: list[str] = []

    def flush() -> None:
        if label is not None and (value or more):
            pairs.append(
                Pair(label, clean(value) if value else clean(more[0]), tuple(more if value else more[1:]))
            )

    for raw in _table_rows(text.splitlines(), is_label):
        line = _DECORATION.sub("", raw.replace("**", "")).strip()
        if not line:
            if label is not None and (value or more):
                flush()
                label = None
            continue
        parts = [split for segment in sections(line) if (split := _split(segment))]
        if parts:
            flush()
            for part_label, part_value in parts[:-1]:
                if part_value:
                    pairs.append(Pair(part_label, clean(part_value)))
            label, value = parts[-1]
            more = []
        elif (label is None or value or more) and is_label(line):
            flush()
            label, value, more = line.rstrip("?"), "", []
        elif label is not None:
            more.append(line)
    flush()
    return pairs
