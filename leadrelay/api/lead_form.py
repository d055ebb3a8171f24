"""The canonical lead as an HTML form: its fields, the form's values, and back.

The page's edit-and-replay form is a view of :class:`~leadrelay.canonical.CanonicalLead`:
the form's values are laid over the lead on record (so what the form does not show —
the broker, UTM tags, first and last names — is kept), and the result goes to
:func:`leadrelay.worker.dead_letters.edit`, the one edit-and-replay the CLI and the API
use too, which validates it with the canonical model. Its problems come back as
``{field path: [messages]}`` so the page can show each next to its field.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from leadrelay.canonical import BudgetPeriod, LeadKind

GENERAL = ""  # the key of problems that belong to no one field
MAX_TEXT = 2_000  # characters in any one-line field; the notes have the model's own cap
MAX_NOTES = 20_000
LOCAL_TIME = "datetime-local"  # a date and time in UTC (the form says so): read with a Z


@dataclass(frozen=True, slots=True)
class FormField:
    path: str  # dotted path into the canonical lead, also the input's name
    label: str
    kind: str = "text"  # an <input> type, or "select" / "textarea"
    choices: tuple[str, ...] = ()
    hint: str = ""
    blank: bool = True  # may be left empty (None); else an empty field leaves the model's default

    @property
    def id(self) -> str:
        return "f-" + self.path.replace(".", "-").replace("_", "-")

    @property
    def limit(self) -> int:
        return MAX_NOTES if self.kind == "textarea" else MAX_TEXT


@dataclass(frozen=True, slots=True)
class Section:
    legend: str
    fields: tuple[FormField, ...]


SECTIONS = (
    Section(
        "Contact",
        (
            FormField("contact.full_name", "Name"),
            FormField("contact.email", "E-mail", "email"),
            FormField("contact.phone", "Phone", "tel", hint="national or +country code"),
            FormField("contact.company", "Company"),
        ),
    ),
    Section(
        "Requirements",
        (
            FormField("requirements.desks.min", "Desks from", "number"),
            FormField("requirements.desks.max", "Desks to", "number"),
            FormField("requirements.workspace_type", "Workspace type"),
            FormField("requirements.budget.min", "Budget from", "number"),
            FormField("requirements.budget.max", "Budget to", "number"),
            FormField("requirements.budget.currency", "Currency", hint="three letters, e.g. GBP"),
            FormField(
                "requirements.budget.period", "Budget per", "select", tuple(p.value for p in BudgetPeriod)
            ),
            FormField("requirements.start_date", "Start date", "date"),
            FormField("requirements.term_months", "Term (months)", "number"),
            FormField("requirements.size_sqm", "Size (m²)", "number"),
            FormField("requirements.area", "Area"),
        ),
    ),
    Section(
        "Location and visit",
        (
            FormField("listing.id", "Listing id", hint="the listing decides the location"),
            FormField("listing.name", "Listing name"),
            FormField("listing.address", "Listing address"),
            FormField("kind", "Kind", "select", tuple(k.value for k in LeadKind), blank=False),
            FormField("viewing_at", "Viewing at (UTC)", LOCAL_TIME),
        ),
    ),
    Section(
        "Reference and notes",
        (
            FormField("external_id", "Portal reference"),
            FormField("message", "Notes", "textarea"),
        ),
    ),
)
FIELDS = tuple(f for section in SECTIONS for f in section.fields)
_PATHS = {f.path: f for f in FIELDS}


def _get(lead: Mapping[str, Any], path: str) -> Any:
    value: Any = lead
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _text(value: Any, kind: str) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if kind == LOCAL_TIME:  # shown in UTC, as a datetime-local input takes it
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            return str(value)
        return (moment.astimezone(UTC) if moment.tzinfo else moment).strftime("%Y-%m-%dT%H:%M")
    return str(value)


def form_values(lead: Mapping[str, Any]) -> dict[str, str]:
    """What each field shows for a lead on record."""
    return {f.path: _text(_get(lead, f.path), f.kind) for f in FIELDS}


def read_form(form: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """The submitted value of every field (trimmed), and the fields over their size cap."""
    values: dict[str, str] = {}
    problems: dict[str, list[str]] = {}
    for f in FIELDS:
        raw = form.get(f.path)
        value = raw.strip() if isinstance(raw, str) else ""
        if len(value) > f.limit:
            problems[f.path] = [f"is longer than {f.limit} characters"]
            value = value[: f.limit]
        values[f.path] = value
    return values, problems


def lead_from_form(on_record: Mapping[str, Any], values: Mapping[str, str]) -> dict[str, Any]:
    """The lead on record with the form's values laid over it (an empty field is None)."""
    lead: dict[str, Any] = copy.deepcopy(dict(on_record))
    for path, value in values.items():
        if path not in _PATHS:
            continue
        if not value and not _PATHS[path].blank:
            lead.pop(path, None)  # a top-level field: the model's default
            continue
        *parents, leaf = path.split(".")
        node = lead
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        if value and _PATHS[path].kind == LOCAL_TIME and len(value) in (16, 19):
            value += "Z"  # 2026-12-01T10:00 as the form shows it: UTC
        node[leaf] = value or None
    return lead


def problems_by_field(errors: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    """``(dotted location, message)`` pairs as the form shows them: each under its field.

    A problem with a part (``requirements.desks``) goes to that part's first field;
    one with the whole lead (neither an e-mail nor a phone) to :data:`GENERAL`.
    """
    found: dict[str, list[str]] = {}
    for where, message in errors:
        field = (
            where
            if where in _PATHS
            else next((p for p in _PATHS if where and p.startswith(where + ".")), GENERAL)
        )
        found.setdefault(field, []).append(message)
    return found
