"""Worker processes for the tests: ``pipeline.process`` over a share of the leads each,
as several Celery workers would. Imports nothing from the test suite's conftest."""

from __future__ import annotations

import multiprocessing
import os
from collections import Counter

from leadrelay.routing import Routing
from leadrelay.runtime import Runtime
from leadrelay.settings import Settings
from leadrelay.worker.pipeline import process


def _process_share(settings: Settings, routing: Routing, lead_ids: list[int]) -> list[str]:
    rt = Runtime.load(settings, routing)
    try:
        return [process(rt, lead_id, owner=f"test-worker-{os.getpid()}") for lead_id in lead_ids]
    finally:
        rt.close()


def process_all(rt: Runtime, lead_ids: list[int], *, workers: int = 2) -> Counter[str]:
    """Every lead through normalise, dedupe and delivery; the outcomes counted."""
    shares = [(rt.settings, rt.routing, lead_ids[n::workers]) for n in range(workers)]
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        outcomes = pool.starmap(_process_share, shares)
    return Counter(outcome for share in outcomes for outcome in share)
