"""Small SVG charts, drawn on the server: no script, no inline style (the admin's CSP allows neither).

Colours come from classes in admin.css. Every mark is a link to the list it counts,
and carries its number in ``data-count`` (the tests follow each one and count the
list). A chart is a picture of a table the page also shows, so it is hidden from
assistive technology and its links are left out of the tab order: the table's links
are the keyboard's way to the same lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup

WIDTH = 480
DAYS_WIDTH = 960
DAYS_HEIGHT = 110
BAR_HEIGHT = 22
LABEL_WIDTH = 130


@dataclass(frozen=True, slots=True)
class Mark:
    """One number on a chart: what it is, how much, which list it counts, how it is coloured."""

    label: str
    value: float
    href: str
    css: str
    text: str = ""  # shown beside a bar; the value when empty
    count: int | None = None  # the list's length, when the mark is a count

    @property
    def shown(self) -> str:
        return self.text or f"{self.value:g}"


def _link(mark: Mark, shape: Markup) -> Markup:
    title = Markup("<title>{}: {}</title>").format(mark.label, mark.shown)
    if not mark.href:
        return title + shape
    count = Markup("") if mark.count is None else Markup(' data-count="{}"').format(mark.count)
    return Markup('<a href="{}" tabindex="-1"{}>{}{}</a>').format(mark.href, count, title, shape)


def _group(mark: Mark, shape: Markup) -> Markup:
    return Markup('<g class="{}">{}</g>').format(mark.css, _link(mark, shape))


def _rect(x: float, y: float, w: float, h: float) -> Markup:
    return Markup('<rect x="{:.2f}" y="{:.2f}" width="{:.2f}" height="{:.2f}"/>').format(x, y, w, h)


def _svg(width: int, height: int, body: list[Markup], css: str) -> Markup:
    return Markup(
        '<svg class="chart {}" viewBox="0 0 {} {}" width="100%" '
        'preserveAspectRatio="xMinYMin meet" aria-hidden="true" focusable="false">{}</svg>'
    ).format(css, width, height, Markup("").join(body))


def columns(stacks: Sequence[tuple[Mark, Sequence[Mark]]], *, top: float | None = None) -> Markup:
    """One column per day: its total as a pale column, its parts stacked from the bottom inside it."""
    if not stacks:
        return Markup("")
    peak = max([top or 0.0, *(total.value for total, _ in stacks), 1.0])
    step = DAYS_WIDTH / len(stacks)
    gap = max(step * 0.15, 0.5)
    parts = [Markup('<line x1="0" y1="{0}" x2="{1}" y2="{0}" class="axis"/>').format(DAYS_HEIGHT, DAYS_WIDTH)]
    for i, (total, pieces) in enumerate(stacks):
        x = i * step + gap / 2
        w = step - gap
        height = DAYS_HEIGHT * total.value / peak
        parts.append(_group(total, _rect(x, DAYS_HEIGHT - height, w, height)))
        bottom = float(DAYS_HEIGHT)
        for piece in pieces:
            if piece.value <= 0:
                continue
            h = DAYS_HEIGHT * piece.value / peak
            bottom -= h
            parts.append(_group(piece, _rect(x, bottom, w, h)))
    return _svg(DAYS_WIDTH, DAYS_HEIGHT + 2, parts, "days")


def bars(marks: Sequence[Mark], *, top: float | None = None) -> Markup:
    """Horizontal bars, one a row, labelled on the left and valued on the right."""
    if not marks:
        return Markup("")
    peak = max([top or 0.0, *(m.value for m in marks), 1e-9])
    room = WIDTH - LABEL_WIDTH - 160  # the value is written after the bar
    rows = []
    for i, mark in enumerate(marks):
        y = i * (BAR_HEIGHT + 6)
        w = max(room * mark.value / peak, 1.0 if mark.value > 0 else 0.0)
        shape = (
            Markup('<text x="0" y="{}" class="label">{}</text>').format(y + 15, mark.label)
            + _rect(LABEL_WIDTH, y, w, BAR_HEIGHT)
            + Markup('<text x="{:.2f}" y="{}" class="value">{}</text>').format(
                LABEL_WIDTH + w + 6, y + 15, mark.shown
            )
        )
        rows.append(_group(mark, shape))
    return _svg(WIDTH, len(marks) * (BAR_HEIGHT + 6), rows, "bars")


def duration(seconds: float) -> str:
    """``850 ms``, ``12.4 s``, ``3.2 min``, ``5.1 h``: a latency as a person reads it."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
