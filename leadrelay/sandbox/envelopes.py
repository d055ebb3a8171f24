"""The JSON shapes Nexudus answers with, and the responses that carry them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from starlette.responses import Response

JSON = "application/json; charset=utf-8"
Record = dict[str, Any]


def iso_utc(moment: datetime | None = None) -> str:
    """ISO 8601 UTC with milliseconds, so that stored dates also sort as text."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def parse_iso(value: str) -> datetime | None:
    """A date or date-time (``Z`` or an offset; naive means UTC), or None."""
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def dumps(payload: object) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def json_response(payload: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(payload), status_code=status, headers=headers, media_type=JSON)


def message(status: int, text: str) -> Response:
    """The ASP.NET Web API shape ``{"Message": …}`` (401, 404, 405, generic 500)."""
    return json_response({"Message": text}, status)


def unauthorized() -> Response:
    return message(401, "Authorization has been denied for this request.")


def access_denied() -> Response:
    return message(401, "Access Denied")


def throttled(status: int, retry_after: str) -> Response:
    """Throttled: empty body and ``Retry-After`` in seconds."""
    return Response(b"", status_code=status, headers={"Retry-After": retry_after})


def generic_error(status: int) -> Response:
    """A 500 from the API itself, or a proxy's plain-text page for any other code."""
    if status == 500:
        return message(status, "An error has occurred.")
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return Response(f"{status} {phrase}".encode(), status_code=status, media_type="text/plain")


@dataclass(frozen=True, slots=True)
class FieldError:
    """One entry of ``Errors``; ``prop`` None for a record-level rule."""

    prop: str | None
    text: str
    attempted: object = None

    def to_json(self) -> Record:
        return {"AttemptedValue": self.attempted, "Message": self.text, "PropertyName": self.prop}

    def __str__(self) -> str:
        return f"{self.prop}: {self.text}" if self.prop else self.text


def failure(errors: list[FieldError], status: int = 400) -> Response:
    """The validation envelope: Message joins every "Prop: message"."""
    body = {
        "Message": "\n".join(str(error) for error in errors),
        "Value": None,
        "Errors": [error.to_json() for error in errors],
        "WasSuccessful": False,
    }
    return json_response(body, status)


def soft_failure() -> Response:
    """Observed: a write answered 200 with ``WasSuccessful: false`` and not performed."""
    return failure([FieldError(None, "The operation could not be completed. Please try again.")], 200)


def written(entity: str, verb: str, record_id: int, username: str) -> Response:
    """The write envelope, e.g. "CrmOpportunity was successfully created."."""
    body = {
        "Status": 200,
        "Message": f"{entity} was successfully {verb}.",
        "Value": {"Id": record_id},
        "OpenInDialog": False,
        "OpenInWindow": False,
        "RedirectURL": None,
        "JavaScript": None,
        "UpdatedOn": iso_utc(),
        "UpdatedBy": username,
        "Errors": None,
        "WasSuccessful": True,
    }
    return json_response(body)


def page_envelope(
    records: list[Record], *, total: int, page: int, size: int, order_field: str, descending: bool
) -> Record:
    offset = (page - 1) * size
    pages = -(-total // size)
    return {
        "Records": records,
        "CurrentPage": page,
        "CurrentPageSize": size,
        "CurrentOrderField": order_field,
        "CurrentSortDirection": "Descending" if descending else "Ascending",
        "FirstItem": offset + 1 if records else 0,
        "HasNextPage": page < pages,
        "HasPreviousPage": page > 1,
        "LastItem": offset + len(records),
        "PageNumber": page,
        "PageSize": size,
        "TotalItems": total,
        "TotalPages": pages,
    }
