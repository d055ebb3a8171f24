"""A digest: one notification that lists several leads, cut into one block of text per lead.

Blocks are cut at the lines a channel's ``parse.digest.separator`` matches, else at
rules (``-----``, ``=====``, ``*****``, ``_____``) and numbered headings
("Enquiry 2 of 5", "Lead #3", "Anfrage 2"), else — for HTML digests whose rules
rendered to nothing — before each repeat of the first labelled field. A block is a
lead's when it has a labelled contact field (a name, an e-mail, a phone, a
company); the intro ("You have 5 new enquiries") and the footer are left out.
The mail is a digest when two or more blocks are leads' and a contact name,
e-mail or phone is labelled in at least two of them (a notification whose
sections hold different fields is not one). Linear in the text's lines.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

from leadrelay.adapters.mail.pairs import pairs_in

FieldOf = Callable[[str], str | None]  # a label's field when it is exactly one of the channel's labels

_RULE = re.compile(r"^[\s>]*[-=_*~#+•·—–─━═]{3,}\s*$")
_HEADING = re.compile(
    r"^[\s>#*]*(?:(?:new|neue[rs]?|nouvelle|nieuwe|nueva)\s+)?"
    r"(?:enquiry|inquiry|lead|request|booking|viewing|tour|anfrage|demande|aanvraag|solicitud|consulta)"
    r"\s*(?:no\.?|nr\.?|n°|#)?\s*\d{1,3}(?:\s*(?:of|/|von|sur|van|de)\s*\d{1,3})?\b[^\n]{0,80}$",
    re.IGNORECASE,
)
_LABEL_END = re.compile(r"[:：\t]")
_REPEATED = ("contact.name", "contact.email", "contact.phone")
MAX_BLOCKS = 200


def _fields(block: str, field_of: FieldOf) -> list[str]:
    found = []
    for pair in pairs_in(block, lambda line: field_of(line) is not None):
        field = field_of(pair.label)
        if field is not None:
            found.append(field)
    return found


def _cut(lines: list[str], starts: Callable[[str], bool], drop: Callable[[str], bool]) -> list[str]:
    blocks: list[list[str]] = [[]]
    for line in lines:
        if starts(line):
            blocks.append([] if drop(line) else [line])
        else:
            blocks[-1].append(line)
    return ["\n".join(b).strip() for b in blocks if "".join(b).strip()]


def _line_field(line: str, field_of: FieldOf) -> str | None:
    label = _LABEL_END.split(line.strip(" \t>*•-"), maxsplit=1)[0].strip()
    return field_of(label) if label and len(label) <= 60 else None


def _by_repeat(lines: list[str], field_of: FieldOf) -> list[str]:
    first = next((f for line in lines if (f := _line_field(line, field_of)) is not None), None)
    if first is None:
        return []
    return _cut(lines, lambda line: _line_field(line, field_of) == first, lambda _line: False)


def _leads(blocks: list[str], field_of: FieldOf) -> list[str]:
    chosen: list[str] = []
    shared: Counter[str] = Counter()
    for block in blocks:
        fields = _fields(block, field_of)
        if any(f.startswith("contact") for f in fields):
            chosen.append(block)
            shared.update(set(fields) & set(_REPEATED))
    return chosen if len(chosen) >= 2 and any(count >= 2 for count in shared.values()) else []


def digest_blocks(text: str, field_of: FieldOf, separator: re.Pattern[str] | None = None) -> list[str]:
    """The leads' blocks of ``text`` in order; empty when it is not a digest."""
    lines = text.splitlines()
    if separator is not None:
        configured = _cut(lines, lambda line: separator.search(line) is not None, lambda _line: False)
        return _leads(configured, field_of)
    ruled = _cut(
        lines,
        lambda line: bool(_RULE.match(line) or _HEADING.match(line)),
        lambda line: bool(_RULE.match(line)),
    )
    found = _leads(ruled, field_of)
    if not found:
        found = _leads(_by_repeat(lines, field_of), field_of)
    return found
