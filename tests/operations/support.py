"""What the operations tests share: a receiver over real HTTP with chosen settings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import select, update

from leadrelay.api.app import create_app
from leadrelay.db import Base, insert_for, transaction, utcnow
from leadrelay.models import SWEEP_JOB, Lead, ScheduledJob
from leadrelay.routing import Routing
from leadrelay.runtime import SANDBOX_PASSWORD, SANDBOX_USERNAME, Runtime
from tests.conftest import OPEN_BUDGET, ThreadedServer, make_settings, routing_with

ADMIN_TOKEN = "operations-admin-token-0123456789"
# a person no log line, alert or purged row may show
PERSON = {
    "full_name": "Zebulon Quist",
    "email": "zebulon.quist@example.org",
    "phone": "+44 20 7946 0321",
    "company": "Quist Bakery Ltd",
}
PHONE_FORMS = ("+442079460321", "+44 20 7946 0321", "2079460321", "020 7946 0321")
MESSAGE = "Zebulon needs six desks from March; call him on 020 7946 0321 after five."
# what would give the person away, wherever in the ledger it stood
TRACES = (PERSON["full_name"], PERSON["email"], PERSON["company"], *PHONE_FORMS, "Zebulon", "Quist")


def runtime_with(url: str, sandbox: object, routing: Routing | None = None, **settings: object) -> Runtime:
    values: dict[str, object] = {
        "database_url": url,
        "admin_token": ADMIN_TOKEN,
        "nexudus_base_url": sandbox.base_url,  # type: ignore[attr-defined]
        "nexudus_username": SANDBOX_USERNAME,
        "nexudus_password": SANDBOX_PASSWORD,
        "nexudus_timeout": 2.0,
        "metrics_cache_seconds": 0,
        "ready_cache_seconds": 0,
        **settings,
    }
    return Runtime.load(make_settings(**values), routing or routing_with(accounts=OPEN_BUDGET))


@contextmanager
def receiver(rt: Runtime) -> Iterator[str]:
    """The receiver app for ``rt`` over real HTTP; yields its base URL."""
    with ThreadedServer(create_app(rt)) as server:
        yield server.base_url


def age(rt: Runtime, lead_id: int, *, days: float = 0, seconds: float = 0) -> None:
    """Make a lead look as if it arrived that long ago."""
    when = utcnow() - timedelta(days=days, seconds=seconds)
    with transaction(rt.sessions) as session:
        session.execute(
            update(Lead).where(Lead.id == lead_id).values(received_at=when, state_changed_at=when)
        )


def swept(rt: Runtime, *, seconds_ago: float = 0, by: str = "worker-1:42:cafe") -> None:
    """Record that a scheduler swept the ledger that long ago."""
    when = utcnow() - timedelta(seconds=seconds_ago)
    values = {"last_run_at": when, "last_done_at": when, "last_runner": by}
    with transaction(rt.sessions) as session:
        session.execute(
            insert_for(session, ScheduledJob)
            .values(name=SWEEP_JOB, runs=1, created_at=when, **values)
            .on_conflict_do_update(index_elements=["name"], set_=values)
        )


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def ledger_text(rt: Runtime) -> str:
    """Every value in every table of the ledger, as text: what a search of the database would find."""
    with rt.sessions() as session:
        return "\n".join(
            _text(value)
            for table in Base.metadata.sorted_tables
            for row in session.execute(select(table))
            for value in row
        )


def traces_of_the_person(rt: Runtime) -> list[str]:
    """Which of the person's details are still anywhere in the ledger."""
    text = ledger_text(rt).lower()
    return [trace for trace in TRACES if trace.lower() in text]
