"""``/_sandbox/…``: inspect and steer a running sandbox (no auth: it is a local test double).

GET  state?tenant=        records, counters, settings        POST reset
GET  requests?since=&tenant=  the request log (since: epoch seconds or ISO time)
GET|POST tenants          DELETE tenants/{login}/coworkers/{id}
GET|PUT  limits, quirks, tokens (partial updates)  DELETE tokens (revoke all issued)
GET|POST|DELETE faults    DELETE faults/{id}
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from leadrelay.sandbox.envelopes import parse_iso
from leadrelay.sandbox.faults import FaultRule
from leadrelay.sandbox.options import TenantSpec
from leadrelay.sandbox.state import SandboxState, TenantExists, UnknownTenant

Endpoint = Callable[[Request], Awaitable[Response]]


async def _body(request: Request) -> Any:
    try:
        return json.loads(await request.body() or b"{}")
    except ValueError as error:
        raise HTTPException(400, f"body is not JSON: {error}") from error


def _since(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        moment = parse_iso(value)
        if moment is None:
            raise HTTPException(400, "since: epoch seconds or an ISO 8601 time") from None
        return moment.timestamp()


def _settings(getter: Callable[[], BaseModel], setter: Callable[..., BaseModel]) -> Endpoint:
    """GET answers the settings; PUT changes the fields it names."""

    async def endpoint(request: Request) -> Response:
        if request.method == "PUT":
            changes = await _body(request)
            if not isinstance(changes, dict):
                raise HTTPException(400, "body must be a JSON object")
            return JSONResponse(setter(**changes).model_dump())
        return JSONResponse(getter().model_dump())

    return endpoint


def control_app(state: SandboxState) -> Starlette:
    async def index(request: Request) -> Response:
        logins = list(state.tenants)
        return JSONResponse({"service": "leadrelay Nexudus sandbox", "api": "/api/", "tenants": logins})

    async def snapshot(request: Request) -> Response:
        return JSONResponse(state.snapshot(request.query_params.get("tenant")))

    async def requests(request: Request) -> Response:
        params = request.query_params
        entries = state.requests(_since(params.get("since")), params.get("tenant"))
        return JSONResponse({"requests": entries, "count": len(entries)})

    async def reset(request: Request) -> Response:
        state.reset()
        return JSONResponse({"reset": True})

    async def tenants(request: Request) -> Response:
        if request.method == "POST":
            tenant = state.add_tenant(TenantSpec.model_validate(await _body(request)))
            return JSONResponse({"username": tenant.username, "seeded": tenant.spec.seed}, 201)
        return JSONResponse({"tenants": list(state.tenants)})

    async def delete_coworker(request: Request) -> Response:
        login, coworker_id = request.path_params["username"], request.path_params["coworker_id"]
        if not state.delete_coworker(coworker_id, login):
            raise HTTPException(404, f"no coworker {coworker_id}")
        return JSONResponse({"deleted": coworker_id})

    async def tokens_revoke(request: Request) -> Response:
        return JSONResponse({"revoked": state.revoke_tokens()})

    async def faults(request: Request) -> Response:
        if request.method == "POST":
            body = await _body(request)
            rules = [
                state.add_fault(FaultRule.model_validate(r))
                for r in (body if isinstance(body, list) else [body])
            ]
            return JSONResponse([rule.model_dump() for rule in rules], 201)
        if request.method == "DELETE":
            return JSONResponse({"removed": state.remove_fault()})
        return JSONResponse([rule.model_dump() for rule in state.fault_rules()])

    async def delete_fault(request: Request) -> Response:
        if not state.remove_fault(request.path_params["rule_id"]):
            raise HTTPException(404, "no such fault rule")
        return JSONResponse({"removed": 1})

    routes = [
        Route("/", index),
        Route("/_sandbox/state", snapshot),
        Route("/_sandbox/requests", requests),
        Route("/_sandbox/reset", reset, methods=["POST"]),
        Route("/_sandbox/tenants", tenants, methods=["GET", "POST"]),
        Route(
            "/_sandbox/tenants/{username}/coworkers/{coworker_id:int}", delete_coworker, methods=["DELETE"]
        ),
        Route("/_sandbox/limits", _settings(lambda: state.limits, state.set_limits), methods=["GET", "PUT"]),
        Route("/_sandbox/quirks", _settings(lambda: state.quirks, state.set_quirks), methods=["GET", "PUT"]),
        Route(
            "/_sandbox/tokens",
            _settings(lambda: state.tokens.settings, state.set_token_settings),
            methods=["GET", "PUT"],
        ),
        Route("/_sandbox/tokens", tokens_revoke, methods=["DELETE"]),
        Route("/_sandbox/faults", faults, methods=["GET", "POST", "DELETE"]),
        Route("/_sandbox/faults/{rule_id:int}", delete_fault, methods=["DELETE"]),
    ]
    return Starlette(
        routes=routes,
        exception_handlers={ValidationError: _invalid, TenantExists: _conflict, UnknownTenant: _unknown},
    )


async def _invalid(request: Request, error: Exception) -> Response:
    assert isinstance(error, ValidationError)
    return JSONResponse({"detail": error.errors(include_url=False, include_context=False)}, 422)


async def _conflict(request: Request, error: Exception) -> Response:
    return JSONResponse({"detail": str(error)}, 409)


async def _unknown(request: Request, error: Exception) -> Response:
    assert isinstance(error, UnknownTenant)
    return JSONResponse({"detail": f"unknown tenant {error.args[0]!r}"}, 404)
