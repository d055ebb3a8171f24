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

# the verb ends the attribution ("… wrote:", "… a écrit :") or names the sender before the colon
# ("… schrieb Hubble <…>:", "… schreef Hubble <…>:", "Hubble wrote on 27/11/2026 09:14:")
_ATTRIBUTION = re.compile(
    r"(?:\b(?:wrote|writes|a écrit|écrit|escribió|escribio|ha scritto|skrev|geschreven)\s*:"
    r"|\b(?:schrieb|schreef|wrote\s+on|escribió\s+el)\b[^\n]{0,300}:)\s*$",
    re.IGNORECASE,
)
_DIGIT = re.compile(r"\d")  # every client's attribution has a date or a time
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
    for index in range(start, len(lines)):  # no slice: a copy of the rest at every quote is quadratic
        line = lines[index]
        if not line.strip():
            pending_blank += 1
            continue
        if not _quoted(line):
            break
        block.extend([""] * pending_blank)
        pending_blank = 0
        block.append(_unquote_line(line))
    return block


def _attribution(lines: list[str], end: int) -> tuple[int, str] | None:
    """The attribution that ends on line ``end`` (clients wrap it over up to three lines):
    the line it begins on and its text, or None."""
    for start in range(end, max(-1, end - _MAX_ATTRIBUTION_LINES), -1):
        line = lines[start]
        if not line.strip() or _quoted(line) or len(line) > _MAX_ATTRIBUTION_CHARS:
            return None
        text = " ".join(part.strip() for part in lines[start : end + 1])
        if _ATTRIBUTION.search(text) and _DIGIT.search(text):
            return start, text
    return None


def _after_attribution(lines: list[str], end: int) -> str:
    first = next((i for i in range(end + 1, len(lines)) if lines[i].strip()), None)
    if first is None:
        return ""
    if _quoted(lines[first]):
        return "\n".join(_quoted_block(lines, first)).strip("\n")
    return "\n".join(lines[first:]).strip("\n")  # a rendered <blockquote> has no ">"; read to the end


def find_quote(lines: list[str], before: int) -> Quote | None:
    """The first original quoted in ``lines`` that begins before line ``before``."""
    bare: int | None = None
    run = 0
    for index, line in enumerate(lines[:before]):
        found = _attribution(lines, index) if line.rstrip().endswith(":") else None
        if found is not None:
            start, text = found
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
