"""The Nexudus resources the sandbox serves: search, get, create, update (full PUT), delete.

Every operation here runs with the state lock held and touches no network.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from starlette.datastructures import QueryParams
from starlette.responses import Response

from leadrelay.nexudus.enums import LeadSource, LossReason, OpportunityStatus
from leadrelay.sandbox import tenant as tables
from leadrelay.sandbox.envelopes import (
    FieldError,
    Record,
    access_denied,
    failure,
    iso_utc,
    message,
    page_envelope,
    written,
)
from leadrelay.sandbox.options import Limits
from leadrelay.sandbox.schema import REQUIRED, FieldSpec, Kind, Schema, coerce
from leadrelay.sandbox.tenant import Tenant

DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 1_000
DOES_NOT_EXIST = "does not exist"
Predicate = Callable[[Record], bool]


@dataclass(frozen=True, slots=True)
class Context:
    tenant: Tenant
    limits: Limits


def _text(value: object) -> str:
    return value.lower() if isinstance(value, str) else ""


def _sort_key(name: str) -> Callable[[Record], tuple[bool, Any]]:
    def key(row: Record) -> tuple[bool, Any]:
        value = row.get(name)
        return (True, 0) if value is None else (False, value)

    return key


def _number(params: QueryParams, name: str, default: int) -> int:
    value = params.get(name)
    return (coerce(Kind.INT, value) or default) if value else default


def _paging(params: QueryParams) -> tuple[int, int]:
    """``page`` and ``size`` (``PageNumber``/``PageSize`` are ignored, as by Nexudus)."""
    page, size = _number(params, "page", 1), _number(params, "size", DEFAULT_PAGE_SIZE)
    return max(1, page), min(max(1, size), MAX_PAGE_SIZE)


class Resource:
    """A read-only resource: search and get (``WritableResource`` adds create, update, delete)."""

    exact_text: ClassVar[frozenset[str]] = frozenset()  # text filters matched exactly, not as contains

    def __init__(self, entity: str, table: str, path: str, fields: Iterable[FieldSpec]) -> None:
        self.entity = entity
        self.table = table
        self.path = path
        self.schema = Schema(fields)
        self.prefix = entity.lower() + "_"

    # --- search -----------------------------------------------------------------------------
    def search(self, tenant: Tenant, params: QueryParams) -> Record:
        predicates = [p for key, value in params.multi_items() if (p := self._predicate(key, value))]
        rows = list(self._candidates(tenant, params))
        for predicate in predicates:
            rows = [row for row in rows if predicate(row)]
        order = self.schema.find(params.get("orderBy") or "Id") or self.schema.find("Id")
        assert order is not None
        descending = params.get("dir", "").lower() in ("descending", "desc")
        rows.sort(key=_sort_key(order.name), reverse=descending)
        page, size = _paging(params)
        offset = (page - 1) * size
        return page_envelope(
            rows[offset : offset + size],
            total=len(rows),
            page=page,
            size=size,
            order_field=order.name,
            descending=descending,
        )

    def _candidates(self, tenant: Tenant, params: QueryParams) -> Iterable[Record]:
        return tenant.tables[self.table].values()

    def _predicate(self, key: str, value: str) -> Predicate | None:
        """A filter like ``CrmOpportunity_Name`` or ``from_CrmOpportunity_CreatedOn``; None: ignored."""
        lowered = key.lower()
        bound = ""
        if lowered.startswith(("from_", "to_")):
            bound, _, lowered = lowered.partition("_")
        spec = self.schema.find(lowered[len(self.prefix) :]) if lowered.startswith(self.prefix) else None
        if spec is None or (bound and spec.kind is not Kind.DATE):
            return None
        name, target = spec.name, coerce(Kind.INT if spec.kind is Kind.INT_LIST else spec.kind, value)
        if target is None:
            return lambda row: False
        if bound == "from":
            return lambda row: _text(row.get(name)) >= target.lower()
        if bound == "to":
            return lambda row: "" < _text(row.get(name)) <= target.lower()
        return self._match(spec, target)

    def _match(self, spec: FieldSpec, target: Any) -> Predicate:
        name = spec.name
        if spec.kind is Kind.INT_LIST:
            return lambda row: target in (row.get(name) or ())
        if spec.kind is Kind.DATE:  # the same day
            return lambda row: _text(row.get(name))[:10] == target[:10].lower()
        if spec.kind in (Kind.TEXT, Kind.EMAIL):
            needle = target.lower()
            if name in self.exact_text:
                return lambda row: _text(row.get(name)) == needle
            return lambda row: needle in _text(row.get(name))
        return lambda row: row.get(name) == target

    # --- single records ---------------------------------------------------------------------
    def not_found(self, record_id: object) -> Response:
        return message(404, f"{self.entity} {record_id} was not found.")

    def find(self, tenant: Tenant, record_id: int) -> Record | None:
        return tenant.tables[self.table].get(record_id)


class WritableResource(Resource):
    """Create and update validate the whole record; hooks add each resource's own rules."""

    def create(self, ctx: Context, body: Record) -> Response:
        return self._save(ctx, body, None)

    def update(self, ctx: Context, body: Record) -> Response:
        record_id = coerce(Kind.INT, body.get("Id"))
        if record_id is None:
            return failure([FieldError("Id", REQUIRED, body.get("Id"))])
        previous = ctx.tenant.tables[self.table].get(record_id)
        if previous is None:
            return self.not_found(record_id)
        return self._save(ctx, body, previous)

    def delete(self, ctx: Context, record_id: int) -> Response:
        previous = ctx.tenant.tables[self.table].pop(record_id, None)
        if previous is None:
            return self.not_found(record_id)
        self.indexed(ctx.tenant, previous, None)
        return written(self.entity, "deleted", record_id, ctx.tenant.username)

    def _save(self, ctx: Context, body: Record, previous: Record | None) -> Response:
        record, errors = self.schema.clean(body)
        errors += self.references(ctx, record, previous)
        if errors:
            return failure(errors)
        if self.denied(ctx, record):
            return access_denied()
        self.complete(ctx, record, previous)
        tenant = ctx.tenant
        stored = (
            tenant.replace(self.table, previous, record) if previous else tenant.insert(self.table, record)
        )
        self.indexed(tenant, previous, stored)
        verb = "updated" if previous else "created"
        return written(self.entity, verb, stored["Id"], tenant.username)

    # --- hooks ------------------------------------------------------------------------------
    def references(self, ctx: Context, record: Record, previous: Record | None) -> list[FieldError]:
        """Rules across records (existence, uniqueness, limits): 400 errors."""
        return []

    def denied(self, ctx: Context, record: Record) -> bool:
        """A reference Nexudus answers 401 "Access Denied" for."""
        return False

    def complete(self, ctx: Context, record: Record, previous: Record | None) -> None:
        """Server-side defaults and side effects of a valid write (the record is not yet stored)."""

    def indexed(self, tenant: Tenant, old: Record | None, new: Record | None) -> None:
        """Keep secondary indexes in step: ``old`` replaced by ``new`` (either may be None)."""


def _missing(tenant: Tenant, table: str, prop: str, value: object) -> list[FieldError]:
    """An error when ``value`` is given and names no record of ``table``."""
    if value is None or value in tenant.tables[table]:
        return []
    return [FieldError(prop, DOES_NOT_EXIST, value)]


class Coworkers(WritableResource):
    exact_text = frozenset({"Email"})

    def _candidates(self, tenant: Tenant, params: QueryParams) -> Iterable[Record]:
        email = params.get("Coworker_Email")
        if email is None:
            return super()._candidates(tenant, params)
        found = tenant.email_index.get(email.strip().lower())
        return [tenant.tables[self.table][found]] if found is not None else []

    def references(self, ctx: Context, record: Record, previous: Record | None) -> list[FieldError]:
        tenant, email = ctx.tenant, record["Email"]
        errors = _missing(tenant, tables.BUSINESSES, "InvoicingBusinessId", record["InvoicingBusinessId"])
        for business_id in record["Businesses"] or ():
            errors += _missing(tenant, tables.BUSINESSES, "Businesses", business_id)
        holder = tenant.email_index.get(email.lower()) if email else None
        if holder is not None and (previous is None or holder != previous["Id"]):
            errors.append(FieldError("Email", "is already in use", email))
        return errors

    def complete(self, ctx: Context, record: Record, previous: Record | None) -> None:
        tenant = ctx.tenant
        if record["CoworkerType"] is None:
            record["CoworkerType"] = 1
        default = tenant.default_business_id
        if default is not None and (not record["Businesses"] or record["InvoicingBusinessId"] is None):
            # Observed: without both, the coworker lands in the login's default location.
            tenant.counters.default_business_landings += 1
            record["Businesses"] = record["Businesses"] or [default]
            if record["InvoicingBusinessId"] is None:
                record["InvoicingBusinessId"] = default
        if record["CreateUser"] and not (previous or {}).get("CreateUser"):
            tenant.counters.welcome_emails += 1
            tenant.welcome_emails.append(
                {"To": record["Email"], "FullName": record["FullName"], "At": iso_utc()}
            )

    def indexed(self, tenant: Tenant, old: Record | None, new: Record | None) -> None:
        if old and tenant.email_index.get(old["Email"].lower()) == old["Id"]:
            del tenant.email_index[old["Email"].lower()]
        if new:
            tenant.email_index[new["Email"].lower()] = new["Id"]


class Opportunities(WritableResource):
    def references(self, ctx: Context, record: Record, previous: Record | None) -> list[FieldError]:
        tenant, column_id = ctx.tenant, record["CrmBoardColumnId"]
        errors = _missing(tenant, tables.COLUMNS, "CrmBoardColumnId", column_id)
        errors += _missing(tenant, tables.COWORKERS, "AgentId", record["AgentId"])
        business = tenant.business_of_column(column_id) if column_id is not None and not errors else None
        if business is None or (previous and tenant.opportunity_location.get(previous["Id"]) == business):
            return errors
        limit, count = ctx.limits.location_limit, tenant.location_counts[business]
        if count >= limit:
            name = tenant.tables[tables.BUSINESSES][business]["Name"]
            text = f"There is a limit of {limit:,} opportunities per location: {name} has {count:,}."
            errors.append(FieldError(None, text, column_id))
        return errors

    def denied(self, ctx: Context, record: Record) -> bool:
        # Observed: naming a missing or deleted coworker answers 401 "Access Denied".
        return record["CoworkerId"] not in ctx.tenant.tables[tables.COWORKERS]

    def complete(self, ctx: Context, record: Record, previous: Record | None) -> None:
        column = ctx.tenant.tables[tables.COLUMNS][record["CrmBoardColumnId"]]
        for flag, status, stamp in (("WinOpportunity", 2, "WonOn"), ("LoseOpportunity", 3, "LostOn")):
            if column.get(flag):
                record["Status"] = status
                record[stamp] = record[stamp] or iso_utc()
        if record["Completed"] is None:
            record["Completed"] = record["Status"] != OpportunityStatus.InProgress

    def indexed(self, tenant: Tenant, old: Record | None, new: Record | None) -> None:
        if old:
            tenant.location_counts[tenant.opportunity_location.pop(old["Id"])] -= 1
        if new:
            business = tenant.business_of_column(new["CrmBoardColumnId"])
            assert business is not None
            tenant.opportunity_location[new["Id"]] = business
            tenant.location_counts[business] += 1


def _fields(kind: Kind, *names: str, **rules: Any) -> list[FieldSpec]:
    return [FieldSpec(name, kind, **rules) for name in names]


_UTM = ("UtmSource", "UtmMedium", "UtmCampaign", "UtmContent", "UtmTerm")

COWORKERS = Coworkers(
    "Coworker",
    tables.COWORKERS,
    "/api/spaces/coworkers",
    [
        *_fields(Kind.TEXT, "FullName", required=True),
        *_fields(Kind.EMAIL, "Email", required=True),
        *_fields(Kind.INT, "CountryId", "SimpleTimeZoneId", required=True, minimum=1),
        *_fields(Kind.INT, "CoworkerType", choices=frozenset({1, 2})),
        *_fields(Kind.INT, "InvoicingBusinessId"),
        *_fields(Kind.INT_LIST, "Businesses"),
        *_fields(Kind.BOOL, "CreateUser"),
        *_fields(Kind.TEXT, "CompanyName", "MobilePhone", "Notes"),
    ],
)

OPPORTUNITIES = Opportunities(
    "CrmOpportunity",
    tables.OPPORTUNITIES,
    "/api/crm/crmopportunities",
    [  # the documented required fields first, in the documented order
        *_fields(Kind.INT, "CrmBoardColumnId", "CoworkerId", required=True),
        *_fields(Kind.INT, "Status", required=True, choices=frozenset(OpportunityStatus)),
        *_fields(Kind.INT, "Position", required=True),
        *_fields(Kind.INT, "LeadSource", choices=frozenset(LeadSource)),
        *_fields(Kind.INT, "LossReason", choices=frozenset(LossReason)),
        *_fields(Kind.NUMBER, "Value", minimum=0),
        *_fields(Kind.DATE, "DueDate", "WonOn", "LostOn"),
        *_fields(Kind.BOOL, "Completed", "Reminded"),
        *_fields(Kind.INT, "AgentId", "TeamId", "OpportunityTypeId", "ResponsibleId", "ReferrerId"),
        *_fields(Kind.TEXT, "Name", "Notes", "SystemId", *_UTM),
    ],
)

READ_ONLY = (
    Resource(
        "Business",
        tables.BUSINESSES,
        "/api/sys/businesses",
        [*_fields(Kind.TEXT, "Name", "TownCity"), *_fields(Kind.INT, "CountryId", "SimpleTimeZoneId")],
    ),
    Resource(
        "CrmBoard",
        tables.BOARDS,
        "/api/crm/crmboards",
        [*_fields(Kind.INT, "BusinessId"), *_fields(Kind.TEXT, "Name")],
    ),
    Resource(
        "CrmBoardColumn",
        tables.COLUMNS,
        "/api/crm/crmboardcolumns",
        [
            *_fields(Kind.INT, "CrmBoardId", "Position"),
            *_fields(Kind.TEXT, "Name"),
            *_fields(Kind.BOOL, "WinOpportunity", "LoseOpportunity"),
        ],
    ),
    Resource("Country", tables.COUNTRIES, "/api/sys/countries", _fields(Kind.TEXT, "Name", "TwoLetterCode")),
    Resource(
        "SimpleTimeZone",
        tables.TIME_ZONES,
        "/api/sys/simpletimezones",
        _fields(Kind.TEXT, "Name", "DisplayName"),
    ),
)

RESOURCES: dict[str, Resource] = {r.path: r for r in (COWORKERS, OPPORTUNITIES, *READ_ONLY)}
