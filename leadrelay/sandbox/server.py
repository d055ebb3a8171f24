"""Running the sandbox: ``serve()`` in the foreground (the CLI), ``running_sandbox()`` in a
background thread on a free loopback port (tests, the demo, benchmarks)."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from leadrelay.sandbox.app import SandboxApp, create_app
from leadrelay.sandbox.envelopes import Record
from leadrelay.sandbox.faults import FaultRule
from leadrelay.sandbox.options import Limits, Quirks, SandboxOptions, TenantSpec, TokenSettings
from leadrelay.sandbox.tenant import COWORKERS, OPPORTUNITIES, Counters

_DROPPED = "ASGI callable returned without completing response."


class _HideDroppedConnections(logging.Filter):
    """Dropped connections are injected on purpose: uvicorn need not report them as errors."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != _DROPPED


def _uvicorn_config(app: SandboxApp, **settings: Any) -> uvicorn.Config:
    error_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _HideDroppedConnections) for f in error_log.filters):
        error_log.addFilter(_HideDroppedConnections())
    return uvicorn.Config(app, access_log=False, lifespan="off", timeout_graceful_shutdown=2, **settings)


def serve(host: str = "127.0.0.1", port: int = 8765, *, options: SandboxOptions | None = None) -> None:
    """Serve the sandbox until interrupted (one process, one event loop)."""
    app = create_app(options)
    config = _uvicorn_config(app, host=host, port=port, log_level="info")  # configures uvicorn's loggers
    login = app.state.options.tenants[0].username
    logging.getLogger("uvicorn.error").info("Nexudus sandbox on http://%s:%s (login %s)", host, port, login)
    uvicorn.Server(config).run()


class SandboxHandle:
    """A sandbox running in this process: its URL, its live state, and helpers for tests."""

    def __init__(self, app: SandboxApp, base_url: str) -> None:
        self.app = app
        self.state = app.state
        self.base_url = base_url

    @property
    def login(self) -> TenantSpec:
        """The first (default) tenant's credentials."""
        return self.state.options.tenants[0]

    @property
    def auth(self) -> tuple[str, str]:
        """HTTP Basic credentials of the default tenant, e.g. for ``httpx.Client(auth=…)``."""
        return self.login.username, self.login.password

    def opportunities(self, tenant: str | None = None) -> list[Record]:
        return self.state.records(OPPORTUNITIES, tenant)

    def coworkers(self, tenant: str | None = None) -> list[Record]:
        return self.state.records(COWORKERS, tenant)

    def counters(self, tenant: str | None = None) -> Counters:
        with self.state.lock:
            return Counters(**self.state.tenant(tenant).counters.to_json())

    def requests(self, since: float | None = None, tenant: str | None = None) -> list[Record]:
        return self.state.requests(since, tenant)

    def add_fault(self, rule: FaultRule | str, **fields: Any) -> FaultRule:
        """Add a rule: a ``FaultRule``, or its action and fields (``add_fault("drop", method="POST")``)."""
        if isinstance(rule, str):
            rule = FaultRule.model_validate({"action": rule, **fields})
        return self.state.add_fault(rule)

    def clear_faults(self) -> int:
        return self.state.remove_fault()

    def set_limits(self, **changes: Any) -> Limits:
        return self.state.set_limits(**changes)

    def set_quirks(self, **changes: Any) -> Quirks:
        return self.state.set_quirks(**changes)

    def set_tokens(self, **changes: Any) -> TokenSettings:
        return self.state.set_token_settings(**changes)

    def add_tenant(self, username: str, password: str, **spec: Any) -> None:
        self.state.add_tenant(TenantSpec(username=username, password=password, **spec))

    def delete_coworker(self, coworker_id: int, tenant: str | None = None) -> bool:
        return self.state.delete_coworker(coworker_id, tenant)

    def reset(self) -> None:
        self.state.reset()


@contextmanager
def running_sandbox(options: SandboxOptions | None = None, **overrides: Any) -> Iterator[SandboxHandle]:
    """Start a sandbox on a free 127.0.0.1 port in a background thread; stop it on exit.

    ``overrides`` are ``SandboxOptions`` fields, e.g. ``running_sandbox(limits_enabled=False)``.
    """
    base = options or SandboxOptions()
    app = create_app(SandboxOptions.model_validate(base.model_dump() | overrides) if overrides else base)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(_uvicorn_config(app, log_level="warning"))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"sandbox-{port}", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the Nexudus sandbox did not start")
            time.sleep(0.005)
        yield SandboxHandle(app, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
