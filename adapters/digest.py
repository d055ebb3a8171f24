"""A digest: one notification that lists several leads, cut into one block of text per lead.

Blocks are cut at the lines a channel's ``parse.digest.separator`` matches, else at
rules (``-----``, ``=====``, ``*****``, ``_____``) and numbered headings
("Enquiry 2 of 5", "Lead #3", "Anfrage 2"), else — for HTML digests whose rules
rendered to nothing — before each repeat of the first labelled field. A block is a
lead's when it has a labelled contact field (a name, an e-mail, a phone, a
company) and at least half the fields of the fullest block; a section unlike a
whole lead (a consultant's name and e-mail) joins the block before it, and the
intro ("You have 5 new enquiries") is left out. The mail is a digest when two or
more blocks are leads', two of them with an e-mail or phone, and a contact's
name, e-mail or phone is labelled in at least two (a notification whose sections
hold different fields is not one). Linear in the text's lines.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

from leadrelay.adapters.mail.pairs import pairs_in

FieldOf = Callable[[str], str | None]  # a label's field when it is exactly one of the channel's labels

_RULE = re.compile(r"^[\s>]*[-=_*~#+•·—–─━═]{3,}\s*$")
_HEADING = re.compile(
    r"^[\s>#*=\-─━_~|\[(]*(?:(?:new|neue[rs]?|nouvelle|nieuwe|nueva)\s+)?"
    r"(?:enquiry|inquiry|lead|request|booking|viewing|tour|anfrage|demande|aanvraag|solicitud|consulta)"
    r"\s*(?:no\.?|nr\.?|n°|#)?\s*\d{1,3}(?:\s*(?:of|/|von|sur|van|de)\s*\d{1,3})?\b[^\n]{0,80}$",
    re.IGNORECASE,
)
_LABEL_END = re.compile(r"[:：\t]")
_REPEATED = ("contact.name", "contact.full_name", "contact.email", "contact.phone")
_REACHABLE = ("contact.email", "contact.phone", "contact")
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


def _alike(fields: set[str], whole: set[str]) -> bool:
    """A block that holds at least half of a whole lead's fields is a lead of its own."""
    return len(fields & whole) * 2 >= len(fields | whole)


def _leads(blocks: list[str], field_of: FieldOf) -> list[str]:
    """The leads' blocks; a section unlike a whole lead (a consultant's contact) joins the one before."""
    labelled = [(block, set(_fields(block, field_of))) for block in blocks]
    whole = max((fields for _, fields in labelled), key=len, default=set())
    chosen: list[tuple[str, set[str]]] = []
    for block, fields in labelled:
        if chosen and not _alike(fields, whole):
            previous, known = chosen[-1]
            chosen[-1] = (f"{previous}\n\n{block}", known | fields)
        elif any(f.startswith("contact") for f in fields) and _alike(fields, whole):
            chosen.append((block, fields))
    reachable = sum(bool(fields & set(_REACHABLE)) for _, fields in chosen)
    shared = Counter(f for _, fields in chosen for f in fields & set(_REPEATED))
    if len(chosen) < 2 or reachable < 2 or not any(count >= 2 for count in shared.values()):
        return []
    return [block for block, _ in chosen]


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
