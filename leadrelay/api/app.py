"""The receiver: webhooks in, plus health, metrics and the OpenAPI at /docs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from prometheus_client import make_asgi_app

from leadrelay import __version__
from leadrelay.api import admin_api, admin_web, health, webhooks
from leadrelay.intake.webhooks import open_doors
from leadrelay.runtime import Runtime


def create_app(runtime: Runtime | None = None) -> FastAPI:
    """The ASGI app; ``runtime`` defaults to one built from the environment."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = runtime or Runtime.load()
        app.state.runtime = rt
        app.state.doors = open_doors(rt.routing)
        yield
        if runtime is None:
            rt.close()

    app = FastAPI(
        title="leadrelay",
        version=__version__,
        summary="Broker-portal leads into Nexudus CRM opportunities, exactly once.",
        lifespan=lifespan,
    )
    app.include_router(webhooks.router, tags=["webhooks"])
    app.include_router(health.router, tags=["health"])
    app.include_router(admin_api.router)
    app.include_router(admin_web.router)
    app.add_exception_handler(admin_web.LoginRequired, admin_web.login_required)
    static = Path(__file__).resolve().parents[1] / "static"
    app.mount("/admin/static", StaticFiles(directory=static), name="admin_static")
    app.mount("/metrics", make_asgi_app())
    return app
