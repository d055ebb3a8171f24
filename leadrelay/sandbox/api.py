"""The Nexudus API routes: ``/api/token`` and the resources, behind the gateway in ``app.py``."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response

from leadrelay.sandbox.auth import read_form, token_answer
from leadrelay.sandbox.envelopes import Record, json_response, message
from leadrelay.sandbox.resources import RESOURCES, Context, Resource, WritableResource
from leadrelay.sandbox.state import SandboxState
from leadrelay.sandbox.tenant import Tenant


def _route(path: str) -> tuple[Resource | None, int | None]:
    """The resource (and record id) a path names; Nexudus routes ignore case and a final slash."""
    path = path.rstrip("/").lower()
    resource = RESOURCES.get(path)
    if resource is not None:
        return resource, None
    head, _, tail = path.rpartition("/")
    resource = RESOURCES.get(head)
    return (resource, int(tail)) if resource is not None and tail.isdigit() else (None, None)


async def _json_object(request: Request) -> Record:
    """The JSON body; anything else binds as an empty record (so validation names what is missing)."""
    try:
        body = json.loads(await request.body() or b"null")
    except (ValueError, UnicodeDecodeError):
        return {}
    return body if isinstance(body, dict) else {}


def _not_allowed(method: str) -> Response:
    return message(405, f"The requested resource does not support http method '{method}'.")


async def handle(state: SandboxState, request: Request, tenant: Tenant | None) -> Response:
    """Answer one admitted API call (``tenant`` is None only for the token endpoint)."""
    path, method = request.scope["path"], request.scope["method"]
    if tenant is None:
        if method != "POST":
            return _not_allowed(method)
        form = await read_form(request)
        with state.lock:
            return token_answer(form, state.tenants, state.tokens)
    resource, record_id = _route(path)
    if resource is None:
        return message(404, f"No HTTP resource was found that matches the request URI '{path}'.")
    writable = resource if isinstance(resource, WritableResource) else None
    if method == "GET":
        with state.lock:
            if record_id is None:
                found: Record | None = resource.search(tenant, request.query_params)
            else:
                found = resource.find(tenant, record_id)
        return resource.not_found(record_id) if found is None else json_response(found)
    if writable is None or method not in (("POST", "PUT") if record_id is None else ("DELETE",)):
        return _not_allowed(method)
    body = await _json_object(request) if record_id is None else {}
    with state.lock:
        context = Context(tenant, state.limits)
        if record_id is not None:
            return writable.delete(context, record_id)
        return writable.create(context, body) if method == "POST" else writable.update(context, body)
