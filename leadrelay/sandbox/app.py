"""The ASGI application: a gateway in front of the Nexudus routes that authenticates,
throttles, injects faults and logs every ``/api/`` call; ``/_sandbox/`` controls it."""

from __future__ import annotations

import time
from collections.abc import Iterable
from functools import partial

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from leadrelay.sandbox import api
from leadrelay.sandbox.auth import TOKEN_PATH, authenticate
from leadrelay.sandbox.control import control_app
from leadrelay.sandbox.envelopes import throttled, unauthorized
from leadrelay.sandbox.faults import FaultRule, act
from leadrelay.sandbox.limits import WRITE_METHODS, format_retry_after
from leadrelay.sandbox.options import SandboxOptions
from leadrelay.sandbox.state import SandboxState
from leadrelay.sandbox.tenant import Tenant


def _authorization(scope: Scope) -> str | None:
    headers: Iterable[tuple[bytes, bytes]] = scope["headers"]
    for name, value in headers:
        if name == b"authorization":
            return value.decode("latin-1")
    return None


class SandboxApp:
    """``create_app()``'s answer; ``.state`` is the live in-memory state."""

    def __init__(self, options: SandboxOptions | None = None) -> None:
        self.state = SandboxState(options)
        self.control = control_app(self.state)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"][:5].lower() == "/api/":  # Nexudus paths ignore case
            await self._api(scope, receive, send)
        else:  # /_sandbox/…, the lifespan protocol, anything else
            await self.control(scope, receive, send)

    async def _api(self, scope: Scope, receive: Receive, send: Send) -> None:
        started, state = time.time(), self.state
        method, path = scope["method"], scope["path"]
        is_token = path.rstrip("/").lower() == TOKEN_PATH
        is_write = method in WRITE_METHODS and not is_token
        tenant: Tenant | None = None
        wait, rule = 0.0, None
        with state.lock:
            generation = state.generation
            if not is_token:
                tenant = authenticate(_authorization(scope), state.tenants, state.tokens)
                wait = state.admit(tenant, is_write) if tenant else 0.0
            if (is_token or tenant) and wait <= 0:
                rule = state.pick_fault(method, path, tenant, is_write)
            limits, quirks = state.limits, state.quirks
        response: Response | None
        if tenant is None and not is_token:
            response = unauthorized()
        elif wait > 0:
            response = throttled(limits.throttle_status, format_retry_after(wait, whole=limits.speed <= 1))
        elif rule is not None:
            perform = partial(api.handle, state, Request(scope, receive), tenant)
            response = await act(rule, perform, send, limits.throttle_status)
        else:
            response = await api.handle(state, Request(scope, receive), tenant)
        if response is not None:
            if quirks.validation_as_200 and is_write and response.status_code == 400:
                response.status_code = 200
            await response(scope, receive, send)
        self._log(scope, started, tenant, response, rule, generation)

    def _log(
        self,
        scope: Scope,
        started: float,
        tenant: Tenant | None,
        response: Response | None,
        rule: FaultRule | None,
        generation: int,
    ) -> None:
        entry = {
            "at": started,
            "tenant": tenant.username if tenant else None,
            "method": scope["method"],
            "path": scope["path"],
            "query": scope["query_string"].decode("latin-1"),
            "status": response.status_code if response is not None else 0,  # 0: connection dropped
            "fault": rule.action if rule else None,
            "ms": round((time.time() - started) * 1000, 3),
        }
        self.state.finish(entry, tenant, generation)


def create_app(options: SandboxOptions | None = None) -> SandboxApp:
    """The sandbox as an ASGI application (one process: the state lives in memory)."""
    return SandboxApp(options)
