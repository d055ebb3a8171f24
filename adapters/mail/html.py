"""HTML mail bodies as text lines a label parser can read.

Table rows become ``Label<TAB>Value`` lines, elements classed ``label`` (and ``<dt>``)
get a colon after them, block elements end lines, so ``<tr><td>Phone</td><td>…``,
``<span class=label>Phone</span> <span class=value>…`` and ``<p><b>Phone:</b> …``
all read the same as the plain-text ``Phone: …``.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator

from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning, ParserRejectedMarkup, Tag
from bs4.builder._htmlparser import BeautifulSoupHTMLParser, HTMLParserTreeBuilder
from bs4.element import Comment, Declaration, Doctype, NavigableString, PageElement, ProcessingInstruction

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


class _Renderer:
    """The text of a tree, walked with a stack: deep nesting is no reason to fail.

    A label gets a colon unless its text ends with one. Reading each label's text
    again is quadratic in nested labels, so the walk keeps, per string type, the
    last non-blank string seen: the one a label's text ends with, if it is inside.
    """

    def __init__(self) -> None:
        self.out: list[str] = []
        self.links: list[str] = []
        self._strings = 0
        self._last: dict[type[NavigableString], tuple[int, str]] = {}

    def render(self, root: Tag) -> None:
        stack: list[tuple[Tag, Iterator[PageElement], int, bool]] = [(root, iter(root.contents), 0, False)]
        while stack:
            tag, children, opened, hidden = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                if stack and not hidden:
                    self._close(tag, opened)
            elif isinstance(child, NavigableString):
                self._string(child, hidden)
            elif isinstance(child, Tag):
                hide = hidden or child.name in _SKIPPED or child.name == "br"
                if not hidden:
                    self._open(child)
                stack.append((child, iter(child.contents), self._strings, hide))

    def _string(self, string: NavigableString, hidden: bool) -> None:
        if text := string.rstrip():
            self._strings += 1
            self._last[type(string)] = (self._strings, text[-1])
        if not hidden and not isinstance(string, _NOT_TEXT):
            self.out.append(_SPACES.sub(" ", str(string)))

    def _open(self, tag: Tag) -> None:
        if tag.name in _SKIPPED:
            return
        if tag.name == "br":
            self.out.append("\n")
            return
        if tag.name == "a" and isinstance(href := tag.get("href"), str):
            self.links.append(href.strip())
        if tag.name in _CELLS:
            self.out.append("\t")
        if tag.name in _BLOCKS:
            self.out.append("\n")

    def _close(self, tag: Tag, opened: int) -> None:
        if _is_label(tag) and self._last_character(tag, opened) != ":":
            self.out.append(":\t")
        if tag.name in _BLOCKS:
            self.out.append("\n")

    def _last_character(self, tag: Tag, opened: int) -> str:
        """What ``tag.get_text().strip()`` ends with: the strings of its types since it opened."""
        types = tag.interesting_string_types or Tag.MAIN_CONTENT_STRING_TYPES
        inside = [
            seen
            for kind in ((types,) if isinstance(types, type) else types)
            if (seen := self._last.get(kind)) is not None and seen[0] > opened
        ]
        return max(inside)[1] if inside else ""


def _tidy(line: str) -> str:
    cells = [c.strip() for c in line.split("\t")]
    return "\t".join(c for c in cells if c)


class _Parser(BeautifulSoupHTMLParser):
    """html.parser, less its quadratic end (CPython gh-135462, fixed after 3.11).

    At the end of the markup, Python 3.11 reads an unfinished tag, comment or
    declaration as text up to the next ``<`` and parses again from there, rescanning
    the rest of the markup each time. HTML5 (and later Pythons) drop it instead;
    so does this parser.
    """

    def close(self) -> None:
        if self.rawdata.startswith("<"):  # what feed() could not finish
            self.rawdata = ""
        super().close()


class _Builder(HTMLParserTreeBuilder):
    """bs4's html.parser builder with :class:`_Parser` (the hook bs4 keeps for its tests)."""

    def feed(self, markup: str | bytes, _parser_class: type[BeautifulSoupHTMLParser] = _Parser) -> None:
        super().feed(markup, _parser_class)


def html_to_text(html: str) -> tuple[str, list[str]]:
    """The visible text of an HTML body, one block a line, and the link targets in it.

    Markup the parser rejects outright (a malformed ``<![`` section) gives no text:
    the plain part, if any, still reads.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
        try:
            soup = BeautifulSoup(html, builder=_Builder())
        except ParserRejectedMarkup:
            return "", []
    renderer = _Renderer()
    renderer.render(soup)
    lines = [_tidy(line) for line in "".join(renderer.out).split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return text, renderer.links
