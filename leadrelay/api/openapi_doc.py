"""The OpenAPI document as the wire sees it.

FastAPI documents an optional query parameter as "X or null", but a query string
has no null: the parameter is X, or absent. Clients generated from the document
(and schemathesis) would otherwise believe ``?channel=null`` means "no filter".
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

_NULL = {"type": "null"}


def _never_null(parameter: dict[str, Any]) -> None:
    schema = parameter.get("schema") or {}
    options = schema.get("anyOf")
    if parameter.get("in") != "query" or not options or _NULL not in options:
        return
    rest = [option for option in options if option != _NULL]
    if len(rest) == 1:
        parameter["schema"] = {**{k: v for k, v in schema.items() if k != "anyOf"}, **rest[0]}
    else:
        schema["anyOf"] = rest


def document_query_parameters_as_sent(app: FastAPI) -> None:
    """Make ``app.openapi()`` drop the null alternative of query parameters."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        document = generate()  # cached by FastAPI: the change below is made once and stays
        for operations in document.get("paths", {}).values():
            for operation in operations.values():
                for parameter in operation.get("parameters", []):
                    _never_null(parameter)
        return document

    app.openapi = openapi  # type: ignore[method-assign]
