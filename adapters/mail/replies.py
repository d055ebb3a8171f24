"""Replies: the original a reply quotes, without the replier's own words.

A reply quotes its original under an attribution line — ``On … wrote:``,
``Am … schrieb …:``, ``Le … a écrit :``, ``El … escribió:``, ``Op … schreef …:``,
``Il … ha scritto:`` — which mail clients wrap over up to three lines; below it the
original is ``>``-quoted (plain text) or not (an HTML ``<blockquote>`` rendered to
lines). A reply may also quote a bare ``>`` block with no attribution. Only the
quoted lines are the original: what the replier wrote above, below or between is
theirs ("Thanks, we'll call them") and never read as the lead.

Every line is looked at a bounded number of times: linear in the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# the verb ends the attribution line: "… wrote:", "… a écrit :", "… schreef:"
_ATTRIBUTION_END = re.compile(
    r"(?:\bwrote|\bwrites|\bschrieb|\ba écrit|\bescribió|\bescribio|\bschreef|\bha scritto|\bskrev"
    r"|\bgeschreven|\bécrit)\s*:\s*$",
    re.IGNORECASE,
)
_MAX_ATTRIBUTION_LINES = 3  # Gmail wraps "On <date>, <name> <address> wrote:" at about 76 characters
_MAX_ATTRIBUTION_CHARS = 400
_MIN_BARE_QUOTE = 2  # lines of a ">" block with no attribution above it
_REPLY_PREFIX = re.compile(
    r"^\s*(?:(?:re|aw|antw|sv|vs|réf|rv|r|wg|fwd?|fw|tr|wtr|doorst)\s*+(?:\[\d+\])?\s*:\s*)+", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class Quote:
    """The original a reply quotes."""

    start: int  # the line the attribution (or the bare quote) begins on
    attribution: str  # "On …, Hubble <enquiries@hubblehq.com> wrote:", or "" for a bare quote
    inner: str  # the quoted lines, one level of ">" taken off


def without_reply_prefix(subject: str) -> str:
    """``Re: AW: Fwd: New enquiry`` → ``New enquiry``."""
    return _REPLY_PREFIX.sub("", subject)


def _quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def _unquote_line(line: str) -> str:
    stripped = line.lstrip()
    if not stripped.startswith(">"):
        return line
    stripped = stripped[1:]
    return stripped[1:] if stripped.startswith(" ") else stripped


def _quoted_block(lines: list[str], start: int) -> list[str]:
    """The ``>`` lines from ``start`` (blank lines inside kept), one level of quoting off."""
    block: list[str] = []
    pending_blank = 0
    for line in lines[start:]:
        if not line.strip():
            pending_blank += 1
            continue
        if not _quoted(line):
            break
        block.extend([""] * pending_blank)
        pending_blank = 0
        block.append(_unquote_line(line))
    return block


def _attribution(lines: list[str], end: int) -> tuple[int, str]:
    """Where the attribution ending on line ``end`` begins, and its text (wrapped lines joined)."""
    start = end
    while (
        start > 0
        and end - start + 1 < _MAX_ATTRIBUTION_LINES
        and lines[start - 1].strip()
        and not _quoted(lines[start - 1])
        and not re.match(r"\s*(on|am|le|el|op|il|den)\b", lines[start], re.IGNORECASE)
    ):
        start -= 1
    return start, " ".join(line.strip() for line in lines[start : end + 1])


def _after_attribution(lines: list[str], end: int) -> str:
    rest = lines[end + 1 :]
    first = next((line for line in rest if line.strip()), "")
    body = _quoted_block(rest, 0) if _quoted(first) else rest  # a rendered <blockquote> has no ">"
    return "\n".join(body).strip("\n")


def find_quote(lines: list[str], before: int) -> Quote | None:
    """The first original quoted in ``lines`` that begins before line ``before``."""
    bare: int | None = None
    run = 0
    for index, line in enumerate(lines[:before]):
        if len(line) <= _MAX_ATTRIBUTION_CHARS and not _quoted(line) and _ATTRIBUTION_END.search(line):
            start, text = _attribution(lines, index)
            inner = _after_attribution(lines, index)
            if inner.strip() and (bare is None or start <= bare):
                return Quote(start, text, inner)
        if _quoted(line):
            run += 1
            if run == _MIN_BARE_QUOTE and bare is None:
                bare = index - run + 1
        elif line.strip():
            run = 0
    if bare is None:
        return None
    return Quote(bare, "", "\n".join(_quoted_block(lines, bare)).strip("\n"))
