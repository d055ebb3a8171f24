"""Request limits for every route: header lines and bytes (431), body bytes (413).

The webhook door streams its bodies and keeps its own, lower cap (256 KiB,
DESIGN.md §3); everything else — the admin API's JSON, the admin page's forms — is
read here first, up to the limit, so a chunked body cannot slip past a missing
or false ``Content-Length``. uvicorn bounds connections and keep-alive
(``leadrelay serve``).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from leadrelay.settings import Settings

WEBHOOK_PREFIX = "/webhooks/"


class Refusal(BaseModel):
    """A request refused before it reached its route (and the webhook door's own refusals)."""

    error: str
    message: str


# what any route may answer because of these limits, for the OpenAPI
LIMIT_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {"model": Refusal, "description": "Body too large"},
    431: {"model": Refusal, "description": "Too many or too large request headers"},
}


async def _refuse(send: Send, status: int, error: str, message: str) -> None:
    body = json.dumps({"error": error, "message": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit():
            return int(value)
    return None


class RequestLimits:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime = getattr(scope["app"].state, "runtime", None) if scope["type"] == "http" else None
        if runtime is None:
            await self.app(scope, receive, send)
            return
        settings: Settings = runtime.settings
        headers = scope["headers"]
        size = sum(len(name) + len(value) for name, value in headers)
        if len(headers) > settings.max_headers or size > settings.max_header_bytes:
            await _refuse(
                send,
                431,
                "headers_too_large",
                f"at most {settings.max_headers} headers and {settings.max_header_bytes} bytes of them",
            )
            return
        if scope["path"].startswith(WEBHOOK_PREFIX):
            await self.app(scope, receive, send)  # the door streams and caps its bodies itself
            return
        limit = settings.max_request_bytes
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await _refuse(send, 413, "too_large", f"the body is larger than {limit} bytes")
            return
        body = await _read(receive, limit)
        if body is None:
            await _refuse(send, 413, "too_large", f"the body is larger than {limit} bytes")
            return
        await self.app(scope, _replay(body, receive), send)


async def _read(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None once it passes ``limit`` bytes (the rest is not read)."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return bytes(body)
        body += message.get("body", b"")
        if len(body) > limit:
            return None
        if not message.get("more_body", False):
            return bytes(body)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body once, then whatever the connection says next (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
