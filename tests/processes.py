"""Real leadrelay processes (receiver, workers, beat) for end-to-end and chaos tests."""

from __future__ import annotations

import os

from leadrelay.children import Child as Proc
from leadrelay.children import wait_http

__all__ = ["Proc", "service_env", "wait_http"]


def service_env(**extra: str) -> dict[str, str]:
    """The test process's environment (database, broker) plus ``extra``."""
    return {**os.environ, "PYTHONUNBUFFERED": "1", **extra}
