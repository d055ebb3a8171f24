"""The canonical opportunity: what every channel's payload becomes.

Every adapter ends by validating a plain dict into :class:`CanonicalLead`; the
normalisation rules that must hold for every channel live here, once:

* e-mails are trimmed and lower-cased, and must look like an address;
* phones become E.164, parsed with the region given in the validation context
  (``{"region": "GB"}``); a number that is *possible* for that region is kept even
  when the numbering plan calls it unassigned, an impossible one is dropped; a lead
  read back from the ledger (:meth:`CanonicalLead.from_ledger`) keeps the E.164
  phone it was stored with, as it is;
* desks and budgets are min/max ranges (a single value fills both);
* a lead with neither an e-mail nor a phone is not a lead.

The same model is the wire format of the ``canonical`` channel, so partners,
Zapier or Make can post it directly (``channel`` and ``lead_source`` are then set
from the routing file, never trusted from the body).
"""

from __future__ import annotations

import contextlib
import re
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

import phonenumbers
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

MAX_EMAIL_LENGTH = 254  # RFC 5321's path limit, less the angle brackets
_EMAIL = re.compile(r"^[^@\s<>(),;:\"\[\]]+@[^@\s<>(),;:\"\[\]]+\.[^@\s<>(),;:\"\[\]]+$")


def _plain_number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


Amount = Annotated[float, PlainSerializer(_plain_number, return_type=int | float)]


class LeadKind(StrEnum):
    enquiry = "enquiry"
    viewing_request = "viewing_request"
    tour_request = "tour_request"
    callback_request = "callback_request"


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # Postgres text and JSONB cannot hold U+0000: a stray one in a partner's text must not stop the lead
        return value.replace("\x00", "") if isinstance(value, str) else value


def first_error(err: ValidationError) -> str:
    """The first validation problem, as ``dotted.path: message`` for one-line reports."""
    first = err.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "__root__")
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def normalise_email(value: str | None) -> str | None:
    """Trim and lower-case an address; raise ValueError when it is not one."""
    if value is None:
        return None
    cleaned = value.strip().strip("<>").strip().lower()
    if cleaned.startswith("mailto:"):
        cleaned = cleaned[len("mailto:") :]
    if not cleaned:
        return None
    # checked first: the pattern is then matched on a bounded string only
    if len(cleaned) > MAX_EMAIL_LENGTH:
        raise ValueError(f"is longer than an e-mail address can be ({MAX_EMAIL_LENGTH} characters)")
    if not _EMAIL.match(cleaned):
        raise ValueError("is not an e-mail address")
    return cleaned


FROM_LEDGER = "from_ledger"  # validation context: a lead as the ledger keeps it (CanonicalLead.from_ledger)
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


def normalise_phone(value: str | None, region: str | None, language_region: str | None = None) -> str | None:
    """E.164 for a possible number, None for an impossible one.

    A national number (no ``+`` or ``00``) that is not valid in ``region`` but is
    valid in ``language_region`` (the country of the language it was written in)
    is read there.
    """
    if value is None:
        return None
    raw = value.strip()
    if not raw:
        return None
    if raw.startswith("00") and raw[2:3].isdigit() and raw[2] != "0":
        raw = "+" + raw[2:]  # "0049 30 …": the international prefix of most of the world, not the US's
    try:
        parsed = phonenumbers.parse(raw, (region or "GB").upper())
    except phonenumbers.NumberParseException:
        return None
    if language_region and not raw.startswith("+") and not phonenumbers.is_valid_number(parsed):
        with contextlib.suppress(phonenumbers.NumberParseException):
            local = phonenumbers.parse(raw, language_region.upper())
            if phonenumbers.is_valid_number(local):
                parsed = local
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


class Contact(_Part):
    full_name: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    company: str | None = None

    @field_validator("email", mode="before")
    @classmethod
    def _email(cls, value: Any) -> str | None:
        return normalise_email(value) if isinstance(value, str) else value

    @field_validator("phone", mode="before")
    @classmethod
    def _phone(cls, value: Any, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        context = info.context or {}
        if context.get(FROM_LEDGER) and isinstance(value, str) and _E164.fullmatch(value):
            return value  # this validator wrote it: parsing it again would give it back
        return normalise_phone(str(value), context.get("region"), context.get("language_region"))

    @model_validator(mode="after")
    def _names(self) -> Contact:
        if not self.full_name and (self.first_name or self.last_name):
            self.full_name = " ".join(p for p in (self.first_name, self.last_name) if p)
        return self


class Range(_Part):
    """An inclusive integer range; a bare number fills both ends."""

    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _from_number(cls, data: Any) -> Any:
        if isinstance(data, int | float) and not isinstance(data, bool):
            return {"min": int(data), "max": int(data)}
        return data

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.min is None and self.max is not None:
            self.min = self.max
        if self.max is None and self.min is not None:
            self.max = self.min
        if self.min is not None and self.max is not None and self.min > self.max:
            self.min, self.max = self.max, self.min
        return self


class BudgetPeriod(StrEnum):
    day = "day"
    week = "week"
    month = "month"
    year = "year"
    total = "total"


class Budget(_Part):
    """Money as a range; ``amount`` (the canonical wire shape) fills both ends."""

    min: Amount | None = Field(default=None, ge=0)
    max: Amount | None = Field(default=None, ge=0)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    period: BudgetPeriod | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_amount(cls, data: Any) -> Any:
        if isinstance(data, dict) and "amount" in data:
            data = dict(data)
            amount = data.pop("amount")
            data.setdefault("min", amount)
            data.setdefault("max", amount)
        return data

    @field_validator("currency", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _ordered(self) -> Budget:
        if self.min is None and self.max is not None:
            self.min = self.max
        if self.max is None and self.min is not None:
            self.max = self.min
        if self.min is not None and self.max is not None and self.min > self.max:
            self.min, self.max = self.max, self.min
        return self

    def monthly_max(self) -> float | None:
        """The upper budget per month, or None when the period is unknown."""
        if self.max is None:
            return None
        factor = {
            BudgetPeriod.day: 365 / 12,
            BudgetPeriod.week: 52 / 12,
            BudgetPeriod.month: 1,
            BudgetPeriod.year: 1 / 12,
            None: 1,
        }.get(self.period)
        return None if factor is None else self.max * factor


class Requirements(_Part):
    desks: Range | None = None
    workspace_type: str | None = None
    budget: Budget | None = None
    start_date: date | None = None
    term_months: int | None = Field(default=None, ge=0, le=600)
    size_sqm: float | None = Field(default=None, ge=0)
    area: str | None = None


class Listing(_Part):
    id: str | None = None
    name: str | None = None
    address: str | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _text_id(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class Broker(_Part):
    name: str | None = None
    contact: str | None = None
    email: str | None = None
    phone: str | None = None

    @field_validator("email", mode="before")
    @classmethod
    def _email(cls, value: Any) -> str | None:
        return normalise_email(value) if isinstance(value, str) else value


class Utm(_Part):
    source: str | None = None
    medium: str | None = None
    campaign: str | None = None
    content: str | None = None
    term: str | None = None


class CanonicalLead(_Part):
    """One enquiry, whatever door it came through."""

    channel: str | None = None
    lead_source: int | None = None
    external_id: str | None = Field(default=None, max_length=200)
    kind: LeadKind = LeadKind.enquiry
    received_at: datetime | None = None
    contact: Contact
    requirements: Requirements = Field(default_factory=Requirements)
    listing: Listing = Field(default_factory=Listing)
    broker: Broker = Field(default_factory=Broker)
    message: str | None = Field(default=None, max_length=20_000)
    viewing_at: datetime | None = None
    utm: Utm = Field(default_factory=Utm)

    @field_validator("external_id", mode="before")
    @classmethod
    def _text_ref(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value.strip() or None if isinstance(value, str) else value

    @model_validator(mode="after")
    def _reachable(self) -> CanonicalLead:
        if not self.contact.email and not self.contact.phone:
            raise ValueError(
                "the lead has neither an e-mail address nor a usable phone number "
                "(contact.email, contact.phone)"
            )
        return self

    def identity(self) -> str:
        """Who this is: the normalised e-mail, else the E.164 phone."""
        return f"email:{self.contact.email}" if self.contact.email else f"phone:{self.contact.phone}"

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=False)

    @classmethod
    def from_ledger(cls, data: Any) -> CanonicalLead:
        """A lead as the ledger keeps it (:meth:`to_json_dict`), validated again.

        Its phone was made E.164 when it was read, so an E.164 phone is taken as it is
        instead of parsed again (phonenumbers: the dearest validator of a lead, run on
        every delivery); any other value is read as ever.
        """
        return cls.model_validate(data, context={FROM_LEDGER: True})


def field_paths(model: type[BaseModel] = CanonicalLead, prefix: str = "") -> frozenset[str]:
    """Every dotted path into the model, parts (``requirements.budget``) and leaves alike."""
    paths: set[str] = set()
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        paths.add(path)
        annotation = info.annotation
        for candidate in getattr(annotation, "__args__", (annotation,)):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                paths |= field_paths(candidate, f"{path}.")
    return frozenset(paths)
