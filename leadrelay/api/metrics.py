"""``GET /metrics``: Prometheus text, built off the event loop (the ledger is read for it)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.concurrency import run_in_threadpool

from leadrelay.ledger_metrics import LedgerCollector
from leadrelay.metrics import exposition_registry
from leadrelay.runtime import Runtime
from leadrelay.worker.celery_app import CONTROL_QUEUE, LEADS_QUEUE
from leadrelay.worker.queue import waiting

router = APIRouter()


def receiver_registry(rt: Runtime) -> CollectorRegistry:
    """Every receiver process's events, plus the ledger's and the broker's state."""

    def depths() -> dict[str, int | None]:
        return {queue: waiting(queue) for queue in (LEADS_QUEUE, CONTROL_QUEUE)}

    return exposition_registry(LedgerCollector(rt, queue_depths=depths))


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    body = await run_in_threadpool(generate_latest, request.app.state.metrics_registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
