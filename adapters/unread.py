"""What an item held that could not be read, named by canonical field path.

A parse error names the field to fix (``contact.email``) so ``leadrelay dlq
edit`` can set exactly that field; a lead that is read anyway carries the same
notes for ``leadrelay parse`` to show. Contact values are personal data: they
are described (``the value of label 'Email'``), never quoted; a requirement's
value (``'ask me'``) is quoted, cut short.
"""

from __future__ import annotations

from typing import Any

from pydantic import model_validator

from leadrelay.adapters.fields import Found, as_text
from leadrelay.adapters.parsing.labels import LabelTable
from leadrelay.canonical import CanonicalLead

_SHOWN_LABELS = 4
_QUOTED_CHARS = 40
_NOT_A = {
    "contact.email": "an e-mail address",
    "broker.email": "an e-mail address",
    "contact.phone": "a phone number",
    "broker.phone": "a phone number",
    "requirements.budget": "an amount",
    "requirements.budget.min": "an amount",
    "requirements.budget.max": "an amount",
    "requirements.desks": "a number of desks",
    "requirements.desks.min": "a number of desks",
    "requirements.desks.max": "a number of desks",
    "requirements.start_date": "a date",
    "received_at": "a date",
    "viewing_at": "a date and time",
    "requirements.term_months": "a term (months or years)",
    "requirements.size_sqm": "an area",
}
_PERSONAL = ("contact", "broker", "message")
_HELD_AT = {"requirements.budget": "requirements.budget.max", "requirements.desks": "requirements.desks.max"}
_USUAL = {  # the labels named first when saying what was looked for
    "contact.email": ("email", "e mail", "email address"),
    "contact.phone": ("phone", "mobile", "telephone"),
}


class ReadSoFar(CanonicalLead):
    """What could be read of an item that is no lead yet (no way to reach the client): the form
    ``leadrelay dlq edit`` opens, with the missing field left empty to fill in."""

    @model_validator(mode="after")
    def _reachable(self) -> ReadSoFar:
        return self


def _at(draft: dict[str, Any], path: str) -> Any:
    node: Any = draft
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _what(path: str, value: Any, label: str, noun: str = "label") -> str:
    where = f"{noun} {label!r}" if label and label not in ("pattern", "unlabelled") else "the item"
    if path.split(".")[0] in _PERSONAL:
        return f"the value of {where}"
    text = " ".join(as_text(value).split())
    shown = text if len(text) <= _QUOTED_CHARS else text[: _QUOTED_CHARS - 1] + "…"
    return f"{shown!r} ({where})"


def unread_fields(found: Found, draft: dict[str, Any]) -> list[str]:
    """One note per field the item gave a value for that the draft does not hold."""
    notes: list[str] = []
    for path, candidates in found.items():
        if path not in _NOT_A or _at(draft, _HELD_AT.get(path, path)) is not None:
            continue
        best = candidates[0]
        notes.append(f"{path}: {_what(path, best.value, best.label)} is not {_NOT_A[path]}")
    return notes


def looked_for(labels: LabelTable, field: str) -> str:
    every = labels.synonyms(field)
    usual = [text for text in _USUAL.get(field, ()) if text in every]
    first = list(dict.fromkeys((*labels.synonyms(field, custom=True), *usual, *every)))[:_SHOWN_LABELS]
    shown = [text[:1].upper() + text[1:] for text in first]
    return "/".join(shown) + ("/…" if len(every) > len(first) else "")


def unreachable(found: Found, draft: dict[str, Any], labels: LabelTable, *, door: str) -> str:
    """Why the lead has no way to reach the client, naming ``contact.email`` and ``contact.phone``."""
    parts: list[str] = []
    for field, what, where in (
        ("contact.email", "e-mail address", "any address in the text"),
        ("contact.phone", "phone number", None),
    ):
        held = next((candidates[0] for path, candidates in found.items() if path == field), None)
        if held is not None:
            what = _what(field, held.value, held.label, "key" if door == "webhook" else "label")
            parts.append(f"{field}: {what} is not {_NOT_A[field]}")
            continue
        key = "keys" if door == "webhook" else "labels"
        also = f", and for {where}" if where and door != "webhook" else ""
        parts.append(f"{field}: no {what} (looked for {key} {looked_for(labels, field)}{also})")
    others = [
        note
        for note in unread_fields(found, draft)
        if not note.startswith(("contact.email", "contact.phone"))
    ]
    tail = f"; also unread: {'; '.join(others)}" if others else ""
    return (
        f"the lead has neither an e-mail address nor a usable phone number — {'; '.join(parts)}{tail}; "
        "set one with `leadrelay dlq edit`"
    )
