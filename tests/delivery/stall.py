"""Playing a worker that stalls (a GC pause, SIGSTOP, a swapped-out VM) before it sends.

:func:`stalled_before_send` places the stall where it hurts most: after every check
the worker makes, inside the HTTP client's ``request``, before a byte goes out.
While the worker is stalled, ``during`` runs (another worker takes the lead over);
time moves on for both clocks that judge the stalled worker: the ledger's (its
lease ends) and the process's monotonic clock (the call's deadline), by ``seconds``.

:func:`stalled_before_call` places it one step earlier: as the call starts, before
the budget's wait and the lease's renewal (a worker held up waiting for its budget).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import update

from leadrelay.db import transaction, utcnow
from leadrelay.models import Lead
from leadrelay.nexudus import deadline
from leadrelay.runtime import Runtime


def expire_lease(rt: Runtime, lead_id: int) -> None:
    """The lease ran out while its holder was stalled."""
    from datetime import timedelta

    with transaction(rt.sessions) as session:
        session.execute(
            update(Lead).where(Lead.id == lead_id).values(lease_until=utcnow() - timedelta(seconds=1))
        )


@contextmanager
def stalled_before_send(
    monkeypatch: pytest.MonkeyPatch,
    rt: Runtime,
    *,
    account: str,
    method: str,
    path_suffix: str,
    seconds: float,
    during: Callable[[], object],
) -> Iterator[list[str]]:
    """The next ``method`` request to a path ending in ``path_suffix`` stalls for ``seconds``."""
    offset = [0.0]
    monkeypatch.setattr(deadline, "clock", lambda: time.monotonic() + offset[0])
    client = rt.nexudus(account)
    real_request = client._http.request
    stalls: list[str] = []

    def request(verb: str, url: Any, *args: Any, **kwargs: Any) -> Any:
        if not stalls and verb == method and str(url).endswith(path_suffix):
            stalls.append(f"{verb} {url}")
            offset[0] += seconds
            during()
        return real_request(verb, url, *args, **kwargs)

    monkeypatch.setattr(client._http, "request", request)
    yield stalls


@contextmanager
def stalled_before_call(
    monkeypatch: pytest.MonkeyPatch,
    rt: Runtime,
    *,
    account: str,
    method: str,
    path_suffix: str,
    during: Callable[[], object],
) -> Iterator[list[str]]:
    """The next ``method`` call to a path ending in ``path_suffix`` stalls before its lease is renewed."""
    client = rt.nexudus(account)
    real_call = client.call
    stalls: list[str] = []

    def call(verb: str, path: str, *args: Any, **kwargs: Any) -> Any:
        if not stalls and verb == method and path.endswith(path_suffix):
            stalls.append(f"{verb} {path}")
            during()
        return real_call(verb, path, *args, **kwargs)

    monkeypatch.setattr(client, "call", call)
    yield stalls
