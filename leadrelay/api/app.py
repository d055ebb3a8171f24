"""The receiver: webhooks in, plus health, metrics and the OpenAPI at /docs.

No CORS middleware, on purpose: partners post server to server, and the admin
page is same-origin, so no browser on another origin may read any answer.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from anyio import to_thread
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from leadrelay import __version__, errors, heap, logs
from leadrelay.api import (
    admin_api,
    admin_bulk,
    admin_bulk_api,
    admin_door,
    admin_edit,
    admin_inboxes,
    admin_lead,
    admin_lists,
    admin_login,
    admin_overview,
    admin_search,
    admin_web,
    health,
    metrics,
    webhooks,
)
from leadrelay.api.limits import LIMIT_RESPONSES, RequestLimits
from leadrelay.api.openapi_doc import document_query_parameters_as_sent
from leadrelay.api.routing_reload import ReceiverReload
from leadrelay.intake.publisher import Publisher
from leadrelay.intake.store import IntakeStore, PoolIntakeStore, SessionIntakeStore, conninfo
from leadrelay.intake.webhooks import open_doors
from leadrelay.runtime import Runtime
from leadrelay.worker import queue

RECEIVER_THREADS = 16  # blocking ledger and broker calls at once, per receiver process
SWITCH_INTERVAL = 0.0005  # seconds
FLUSH_SECONDS = 5.0  # at shutdown, for the broker to take the ids the last answers promised it


_WARM = heap.WarmFreeze("receiver, warm")


def _publish(lead_ids: list[int]) -> int:
    """The publisher's send in a served process: its first batches import the broker's client."""
    try:
        return queue.announce(lead_ids)
    finally:
        _WARM.tick()


def create_app(runtime: Runtime | None = None) -> FastAPI:
    """The ASGI app; ``runtime`` defaults to one built from the environment."""
    if runtime is None:
        logs.configure()  # each `serve --workers N` process builds its own app: JSON, redacted logs

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # as many threads as pooled connections: a thread never waits for one, and no
        # connection is opened and closed per request (the pool's overflow)
        to_thread.current_default_thread_limiter().total_tokens = RECEIVER_THREADS
        # The event loop does short syscalls (a socket send, a Postgres round trip) that drop the
        # GIL; with the default 5 ms switch interval it may then wait that long for a busy worker
        # thread (the broker publish) to hand it back. 0.5 ms keeps that convoy off the latency.
        sys.setswitchinterval(SWITCH_INTERVAL)
        rt = runtime or Runtime.load(pool_size=RECEIVER_THREADS)
        app.state.runtime = rt
        app.state.doors = open_doors(rt.routing)
        app.state.metrics_registry = metrics.receiver_registry(rt)
        store: IntakeStore
        if rt.engine.dialect.name == "postgresql":  # the receiver's own pool, on the event loop
            store = PoolIntakeStore(conninfo(rt.engine), size=rt.settings.receiver_ledger_connections)
        else:  # SQLite (the demo): the session, in a worker thread
            store = SessionIntakeStore(rt.sessions)
        await store.open()
        app.state.intake_store = store
        app.state.publisher = Publisher(_publish if runtime is None else lambda ids: queue.announce(ids))
        reload = app.state.routing_reload = ReceiverReload(app, rt)
        reload.start()  # SIGHUP, and a look at the file every routing_watch_seconds
        if runtime is None:  # a served process: its startup's objects leave the collector's way
            heap.freeze_long_lived("receiver")
        try:
            yield
        finally:
            await reload.stop()
            await app.state.publisher.close(FLUSH_SECONDS)  # what is still unsent then, the sweeper publishes
            await store.close()
            if runtime is None:
                rt.close()

    app = FastAPI(
        title="leadrelay",
        version=__version__,
        summary="Broker-portal leads into Nexudus CRM opportunities, exactly once.",
        lifespan=lifespan,
    )
    app.include_router(webhooks.router, tags=["webhooks"], responses=LIMIT_RESPONSES)
    app.include_router(health.router, tags=["health"], responses=LIMIT_RESPONSES)
    app.include_router(metrics.router)
    app.include_router(admin_api.router)
    app.include_router(admin_search.router)  # lists, pages of them, CSV
    app.include_router(admin_inboxes.router)
    app.include_router(admin_lists.router)  # before admin_web: /admin/leads/export.csv is not a lead id
    app.include_router(admin_web.router)
    app.include_router(admin_login.router)
    app.include_router(admin_door.router)
    app.include_router(admin_door.api_router)
    app.include_router(admin_edit.router)  # issue 15: edit-and-replay on the page
    app.include_router(admin_bulk.router)  # issue 15: bulk replay/discard as a job, page
    app.include_router(admin_bulk_api.router)  # issue 15: bulk jobs, API
    app.include_router(admin_overview.router)
    app.include_router(admin_lead.router)
    app.add_exception_handler(admin_web.LoginRequired, admin_web.login_required)
    app.add_exception_handler(errors.Refused, admin_api.answer_refusal)  # 409; 404 for a NotFound
    app.add_exception_handler(errors.NotFound, admin_api.answer_refusal)
    static = Path(__file__).resolve().parents[1] / "static"
    app.mount("/admin/static", StaticFiles(directory=static), name="admin_static")
    app.add_middleware(webhooks.WebhookDoor)  # inside the limits: they check the door's headers too
    app.add_middleware(RequestLimits)
    document_query_parameters_as_sent(app)
    webhooks.publish_canonical_schema(app)
    return app
