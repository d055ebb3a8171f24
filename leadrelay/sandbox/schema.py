"""Field rules of the sandbox's resources: posted values are checked and normalised,
each failure becoming one entry of the Nexudus validation envelope."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from leadrelay.sandbox.envelopes import FieldError, Record, iso_utc, parse_iso

REQUIRED = "is a required field"
INVALID = "is not a valid value"
UNKNOWN = "is not a documented field of this record"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_MISSING = object()


class Kind(Enum):
    INT = "int"
    NUMBER = "number"
    TEXT = "text"
    BOOL = "bool"
    DATE = "date"
    EMAIL = "email"
    INT_LIST = "int_list"


def _to_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    return None


def _to_number(value: object) -> float | int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _to_bool(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _to_text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _to_date(value: object) -> str | None:
    moment = parse_iso(value) if isinstance(value, str) else None
    return iso_utc(moment) if moment else None


def _to_email(value: object) -> str | None:
    return value.strip() if isinstance(value, str) and _EMAIL.match(value.strip()) else None


def _to_int_list(value: object) -> list[int] | None:
    if not isinstance(value, list):
        return None
    items = [_to_int(item) for item in value]
    return None if None in items else [item for item in items if item is not None]


_CONVERTERS: dict[Kind, tuple[Callable[[object], Any], str]] = {
    Kind.INT: (_to_int, INVALID),
    Kind.NUMBER: (_to_number, INVALID),
    Kind.TEXT: (_to_text, INVALID),
    Kind.BOOL: (_to_bool, INVALID),
    Kind.DATE: (_to_date, "is not a valid date"),
    Kind.EMAIL: (_to_email, "is not a valid email address"),
    Kind.INT_LIST: (_to_int_list, INVALID),
}


def coerce(kind: Kind, raw: object) -> Any:
    """``raw`` as a value of ``kind`` (a date as ISO UTC text), or None when it is not one."""
    return _CONVERTERS[kind][0](raw)


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    kind: Kind
    required: bool = False
    choices: frozenset[int] | None = None
    minimum: float | None = None

    def check(self, raw: object) -> tuple[object, FieldError | None]:
        """The normalised value (``_MISSING`` when absent or invalid) and the error, if any."""
        if raw is None or raw is _MISSING or raw == "":
            return _MISSING, FieldError(self.name, REQUIRED, None) if self.required else None
        convert, complaint = _CONVERTERS[self.kind]
        value = convert(raw)
        if value is None or (self.choices is not None and value not in self.choices):
            return _MISSING, FieldError(self.name, complaint, raw)
        if self.minimum is not None and value < self.minimum:
            return _MISSING, FieldError(self.name, f"must be greater than or equal to {self.minimum:g}", raw)
        return value, None


SERVER_FIELDS = (
    FieldSpec("Id", Kind.INT),
    FieldSpec("UniqueId", Kind.TEXT),
    FieldSpec("CreatedOn", Kind.DATE),
    FieldSpec("UpdatedOn", Kind.DATE),
)


class Schema:
    """The declared fields of one resource: a posted field it does not declare is refused.

    Names bind ignoring case, as Nexudus's JSON binding does; the server fields a GET
    answers with (``Id``, ``UniqueId``, ``CreatedOn``, ``UpdatedOn``) may be sent back,
    so that GET, merge, PUT works, and are kept by the server.
    """

    def __init__(self, fields: Iterable[FieldSpec]) -> None:
        self.fields = tuple(fields)
        self.by_name = {spec.name.lower(): spec for spec in (*SERVER_FIELDS, *self.fields)}

    def find(self, name: str) -> FieldSpec | None:
        """The field a filter names: ``CrmBoardColumn`` finds ``CrmBoardColumnId``."""
        lowered = name.lower()
        return self.by_name.get(lowered) or self.by_name.get(lowered + "id")

    def clean(self, body: Record) -> tuple[Record, list[FieldError]]:
        """``body`` with every declared field normalised (None when absent or invalid), each
        name spelt as declared, and the errors: one per undeclared field, one per bad value."""
        errors: list[FieldError] = []
        posted: Record = {}
        for name, value in body.items():
            spec = self.by_name.get(name.lower()) if isinstance(name, str) else None
            if spec is None:
                errors.append(FieldError(str(name), UNKNOWN, value))
            else:
                posted[spec.name] = value
        record = {spec.name: posted[spec.name] for spec in SERVER_FIELDS if spec.name in posted}
        for spec in self.fields:
            value, error = spec.check(posted.get(spec.name, _MISSING))
            if error:
                errors.append(error)
            record[spec.name] = None if value is _MISSING else value
        return record, errors
