"""HTML mail bodies as text lines a label parser can read.

Table rows become ``Label<TAB>Value`` lines, elements classed ``label`` (and ``<dt>``)
get a colon after them, block elements end lines, so ``<tr><td>Phone</td><td>…``,
``<span class=label>Phone</span> <span class=value>…`` and ``<p><b>Phone:</b> …``
all read the same as the plain-text ``Phone: …``.
"""

from __future__ import annotations

import re
import warnings

from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning, NavigableString, Tag
from bs4.element import Comment, Declaration, Doctype, ProcessingInstruction

_BLOCKS = frozenset(
    (
        *("p", "div", "tr", "li", "ul", "ol", "table", "tbody", "thead", "tfoot", "dl", "dt", "dd"),
        *(
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "section",
            "article",
            "header",
            "footer",
            "main",
            "aside",
            "nav",
        ),
        *("blockquote", "pre", "hr", "center", "form", "fieldset", "address"),
    )
)
_CELLS = frozenset(("td", "th"))
_SKIPPED = frozenset(("script", "style", "head", "title", "noscript", "template"))
_NOT_TEXT = (Comment, Declaration, Doctype, ProcessingInstruction)
_LABEL_CLASS = re.compile(r"(^|[-_])(label|key|field-name|fieldname)$", re.IGNORECASE)
_SPACES = re.compile(r"[ \t\u00a0\u200b\r\f\v]+")


def _is_label(tag: Tag) -> bool:
    if tag.name == "dt":
        return True
    classes: list[str] | str = tag.get("class") or []
    return any(isinstance(c, str) and _LABEL_CLASS.search(c) for c in classes)


def _render(node: Tag, out: list[str], links: list[str]) -> None:
    for child in node.children:
        if isinstance(child, _NOT_TEXT):
            continue
        if isinstance(child, NavigableString):
            out.append(_SPACES.sub(" ", str(child)))
            continue
        if not isinstance(child, Tag) or child.name in _SKIPPED:
            continue
        if child.name == "br":
            out.append("\n")
            continue
        if child.name == "a" and isinstance(href := child.get("href"), str):
            links.append(href.strip())
        if child.name in _CELLS:
            out.append("\t")
        if child.name in _BLOCKS:
            out.append("\n")
        _render(child, out, links)
        if _is_label(child) and not child.get_text().strip().endswith(":"):
            out.append(":\t")
        if child.name in _BLOCKS:
            out.append("\n")


def _tidy(line: str) -> str:
    cells = [c.strip() for c in line.split("\t")]
    return "\t".join(c for c in cells if c)


def html_to_text(html: str) -> tuple[str, list[str]]:
    """The visible text of an HTML body, one block a line, and the link targets in it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
        soup = BeautifulSoup(html, "html.parser")
    out: list[str] = []
    links: list[str] = []
    _render(soup, out, links)
    lines = [_tidy(line) for line in "".join(out).split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return text, links
