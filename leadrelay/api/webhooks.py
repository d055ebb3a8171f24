"""``POST /webhooks/{channel}``: answer 202 only once the raw item is committed.

Answers (DESIGN.md §3): 202 ``{"event_id", "duplicate"}``; 401 bad, missing or
stale signature or token; 404 unknown channel; 400 unreadable JSON; 413 body too large.
A rejected request stores nothing but a counter and a log line without the body.
``POST /webhooks/{channel}/{token}`` is the same door for channels whose token is
in the URL (``scheme: token``, ``token_in: path``); the token is never logged.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.types import ASGIApp, Receive, Scope, Send

from leadrelay import logs
from leadrelay.api.limits import WEBHOOK_PREFIX, Refusal
from leadrelay.canonical import CanonicalLead
from leadrelay.errors import InputError
from leadrelay.intake.door_log import UNKNOWN_CHANNEL, Rejection, door_log
from leadrelay.intake.signatures import SignatureError
from leadrelay.intake.store import Inbound
from leadrelay.metrics import WEBHOOKS, count_intake

router = APIRouter()
log = structlog.get_logger(__name__)


class Accepted(BaseModel):
    event_id: int
    duplicate: bool


class TooLarge(InputError):
    """The body passed the size limit (answered with 413, nothing stored)."""


async def _read_capped(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise TooLarge()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise TooLarge()
    return bytes(body)


def _refuse(
    request: Request, channel: str, status: int, error: str, message: str, body: bytes | None = None
) -> JSONResponse:
    """The refusal, counted, logged without the body, and kept in the door log (in the background)."""
    WEBHOOKS.labels(channel=channel, status=str(status)).inc()
    log.info("webhook_refused", channel=channel, status=status, error=error)
    declared = request.headers.get("content-length", "")
    rejection = Rejection.of(
        channel if channel in request.app.state.doors else UNKNOWN_CHANNEL,
        status,
        error,
        message,
        source=request.client.host if request.client else None,
        headers=request.headers.items(),
        body=body,
        declared_bytes=int(declared)
        if declared.isascii() and declared.isdigit() and len(declared) < 19
        else None,
    )
    door_log(request.app.state).record(rejection)
    return JSONResponse({"error": error, "message": message}, status_code=status)


_RESPONSES: dict[int | str, dict[str, object]] = {
    401: {"model": Refusal, "description": "Bad, missing or stale signature, or a wrong token"},
    404: {"model": Refusal, "description": "Unknown channel"},
    400: {"model": Refusal, "description": "Body is not JSON"},
    413: {"model": Refusal, "description": "Body larger than 256 KiB"},
}


_SIGNATURE_HEADERS = {
    "webhook-id": "Standard Webhooks: the delivery's id (a re-sent delivery keeps it)",
    "webhook-timestamp": "Standard Webhooks: Unix seconds, within ±5 minutes of now",
    "webhook-signature": "Standard Webhooks: `v1,<base64 HMAC-SHA256 of id.timestamp.body>`, space-separated",
    "x-signature": "channels configured for plain HMAC: `sha256=<hex HMAC-SHA256 of the body>` "
    "(of `{timestamp}.{body}` when the channel has a timestamp_header)",
    "authorization": "channels with scheme token: `Bearer <token>`",
}
# The body is read as raw bytes (they are what is signed), so FastAPI cannot describe it: this does.
PARTNER_BODY = (
    "the partner's JSON, as it sends it (at most 256 KiB). A channel with `adapter: canonical` "
    "takes a CanonicalLead (see POST /webhooks/canonical); the portals' channels take their own shape."
)


def _request(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {"application/json": {"schema": schema}},
        },
        "parameters": [
            {
                "name": name,
                "in": "header",
                "required": False,
                "description": text,
                "schema": {"type": "string"},
            }
            for name, text in _SIGNATURE_HEADERS.items()
        ],
    }


CANONICAL_REF = {"$ref": "#/components/schemas/CanonicalLead"}
_PARTNER = _request({"type": "object"}, PARTNER_BODY)
_CANONICAL = _request(CANONICAL_REF, "a CanonicalLead (at most 256 KiB); its schema is checked by the worker")


@router.post(
    "/webhooks/canonical",
    status_code=202,
    response_model=Accepted,
    responses=_RESPONSES,
    openapi_extra=_CANONICAL,
    summary="Receive a canonical lead",
)
async def receive_canonical(request: Request) -> JSONResponse:
    """The ``canonical`` channel: the body is a CanonicalLead (Zapier, Make, forms, any partner)."""
    return await _receive("canonical", request, None)


@router.post(
    "/webhooks/{channel}",
    status_code=202,
    response_model=Accepted,
    responses=_RESPONSES,
    openapi_extra=_PARTNER,
    summary="Receive a webhook",
)
async def receive_webhook(channel: str, request: Request) -> JSONResponse:
    return await _receive(channel, request, None)


@router.post(
    "/webhooks/{channel}/{token}",
    status_code=202,
    response_model=Accepted,
    responses=_RESPONSES,
    openapi_extra=_PARTNER,
    summary="Receive a webhook whose token is in the URL",
)
async def receive_webhook_with_token(channel: str, token: str, request: Request) -> JSONResponse:
    """For senders that cannot set headers (an HTML form): ``scheme: token``, ``token_in: path``."""
    return await _receive(channel, request, token)


class WebhookDoor:
    """``POST /webhooks/{channel}[/{token}]`` answered here, around FastAPI's routing.

    The routes above describe the door in the OpenAPI, and answer it in an app built
    without this middleware; the receiver adds it, inside :class:`~leadrelay.api.limits.RequestLimits`
    and Starlette's error middleware (an unexpected error is still a logged 500). The
    routing, dependency solving and per-route exception stack it skips cost ~65 µs a
    webhook, a tenth of the receiver's CPU at its maximum rate (bench/PROFILE.md,
    thirteenth pass). Any other request — another method, a path with an empty, a
    trailing or a third segment — goes on to FastAPI, which answers it as before.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = door_route(scope)
        if route is None:
            await self.app(scope, receive, send)
            return
        response = await _receive(route[0], Request(scope, receive), route[1])
        await response(scope, receive, send)


def door_route(scope: Scope) -> tuple[str, str | None] | None:
    """The channel and the path token of a request to the door, as the routes above match them."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return None
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):  # as Starlette's routing reads the path behind a proxy's prefix
        path = path[len(root) :]
    if not path.startswith(WEBHOOK_PREFIX):
        return None
    channel, slash, token = path[len(WEBHOOK_PREFIX) :].partition("/")
    if not channel or (slash and not token) or "/" in token:
        return None
    return channel, token or None


async def _receive(channel: str, request: Request, path_token: str | None) -> JSONResponse:
    state = request.app.state
    door = state.doors.get(channel)
    known = channel if door is not None else "unknown"
    if door is None:
        message = f"no channel named {channel[:100]!r} accepts webhooks here"
        return _refuse(request, known, 404, "unknown_channel", message)
    settings = state.runtime.settings
    try:
        body = await _read_capped(request, settings.max_body_bytes)
    except TooLarge:
        too_large = f"the body is larger than {settings.max_body_bytes} bytes"
        return _refuse(request, known, 413, "too_large", too_large)
    try:
        verified = door.verify(
            request.headers,
            body,
            tolerance_seconds=settings.webhook_tolerance_seconds,
            path_token=path_token,
        )
    except SignatureError as err:
        error = "invalid_token" if door.config.scheme == "token" else "invalid_signature"
        return _refuse(request, known, 401, error, str(err), body)
    try:
        json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        return _refuse(request, known, 400, "invalid_json", f"the body is not JSON: {err}", body)
    except RecursionError:
        too_deep = "the body is JSON nested too deeply to read"
        return _refuse(request, known, 400, "invalid_json", too_deep, body)

    key = door.intake_key(verified, body)
    content_type = request.headers.get("content-type")
    meta = {"delivery_id": verified.delivery_id, "timestamp": verified.timestamp}
    item = Inbound(channel, "webhook", key, body, content_type, meta)
    intake, publish = await state.intake_store.record(item)  # committed: now it may be answered
    if publish:
        state.publisher.submit(intake.lead_id)  # on the broker moments later, never before the commit
    logs.bind_lead(intake.lead_id, channel, {"delivery_id": verified.delivery_id})
    _accepted(channel).inc()
    count_intake(channel, "webhook", duplicate=intake.duplicate)
    log.info("webhook_received", duplicate=intake.duplicate)
    return JSONResponse({"event_id": intake.lead_id, "duplicate": intake.duplicate}, status_code=202)


def canonical_schemas() -> dict[str, Any]:
    """``CanonicalLead`` and the parts it refers to, as OpenAPI component schemas."""
    schema = CanonicalLead.model_json_schema(ref_template="#/components/schemas/{model}")
    parts: dict[str, Any] = schema.pop("$defs", {})
    return {**parts, "CanonicalLead": schema}


def publish_canonical_schema(app: FastAPI) -> None:
    """Make ``app.openapi()`` carry the CanonicalLead schema the canonical route refers to."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        document = generate()  # cached by FastAPI: the change below is made once and stays
        components = document.setdefault("components", {}).setdefault("schemas", {})
        for name, schema in canonical_schemas().items():
            if components.setdefault(name, schema) != schema:
                raise RuntimeError(f"two OpenAPI schemas are named {name}: rename one")
        return document

    app.openapi = openapi  # type: ignore[method-assign]


@functools.cache
def _accepted(channel: str) -> Any:
    """The 202 counter's child for a channel (a label lookup less per request)."""
    return WEBHOOKS.labels(channel=channel, status="202")
