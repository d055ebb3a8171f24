"""Small helpers the tests share."""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import Engine, Interval, case, create_engine, event, func, literal, select, update
from sqlalchemy.orm import Session

from leadrelay import logs
from leadrelay.db import transaction
from leadrelay.demo import DEMO_LEAD
from leadrelay.intake.store import record_inbound
from leadrelay.models import TERMINAL_STATES, DeadLetter, DeliveryAttempt, Lead, LeadState
from leadrelay.routing import Routing
from leadrelay.runtime import Runtime
from leadrelay.worker.dispatch import Claim, claim

T = TypeVar("T")

# the canonical sample (adapters/canonical/fixtures/samples/lead.json), with a fixed receipt time
CANONICAL: dict[str, Any] = {**DEMO_LEAD, "received_at": "2026-11-27T12:00:00Z"}


class Checkouts:
    """Counts the pool's checkouts of an engine."""

    def __init__(self, engine: Engine) -> None:
        self.count = 0
        event.listen(engine, "checkout", self._seen)

    def _seen(self, *_: object) -> None:
        self.count += 1


def canonical(**changes: Any) -> dict[str, Any]:
    """The canonical sample with top-level keys replaced."""
    return {**json.loads(json.dumps(CANONICAL)), **changes}


def ingest(
    rt: Runtime, body: dict[str, Any] | bytes, *, channel: str = "canonical", source: str = "webhook"
) -> int:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    with transaction(rt.sessions) as session:
        return record_inbound(
            session,
            channel=channel,
            source=source,
            intake_key=f"test:{uuid.uuid4().hex}",
            body=raw,
            content_type="application/json",
        ).lead_id


def record_empty(session: Session, key: str) -> int:
    """An empty canonical webhook recorded under intake key ``key`` in the caller's session; its lead id."""
    return record_inbound(
        session,
        channel="canonical",
        source="webhook",
        intake_key=key,
        body=b"{}",
        content_type="application/json",
    ).lead_id


def lead(rt: Runtime, lead_id: int) -> Lead:
    with rt.sessions() as session:
        row = session.get(Lead, lead_id)
        assert row is not None
        return row


def set_lead(rt: Runtime, lead_id: int, **values: Any) -> None:
    """Write a lead's columns directly: the state a test starts from."""
    with transaction(rt.sessions) as session:
        session.execute(update(Lead).where(Lead.id == lead_id).values(**values))


def normalised_lead(rt: Runtime, name: str) -> int:
    """A lead ingested and read: routed, ``normalised``, waiting for its claim."""
    from leadrelay.worker.pipeline import read

    contact = {"full_name": f"Person {name}", "email": f"{name}@leads.example"}
    lead_id = ingest(rt, canonical(external_id=name, contact=contact))
    assert read(rt, lead_id, owner="reader").state is LeadState.normalised
    return lead_id


def claim_status(
    rt: Runtime, lead_id: int, owner: str, *, routing: Routing | None = None, hinted: bool = False
) -> Claim:
    """Claim the lead in a transaction of its own; ``hinted``: the caller names its account."""
    account = lead(rt, lead_id).account if hinted else None
    with transaction(rt.sessions) as session:
        found = claim(
            session, lead_id, owner=owner, lease_seconds=60, routing=routing or rt.routing, account=account
        )
    assert (found.row is not None) == (found.status is Claim.claimed)
    return found.status


def dead_letters(rt: Runtime, lead_id: int | None = None) -> list[DeadLetter]:
    with rt.sessions() as session:
        stmt = select(DeadLetter).order_by(DeadLetter.id)
        if lead_id is not None:
            stmt = stmt.where(DeadLetter.lead_id == lead_id)
        return list(session.execute(stmt).scalars())


def attempts(rt: Runtime, lead_id: int) -> list[DeliveryAttempt]:
    with rt.sessions() as session:
        stmt = select(DeliveryAttempt).where(DeliveryAttempt.lead_id == lead_id).order_by(DeliveryAttempt.id)
        return list(session.execute(stmt).scalars())


def settle(rt: Runtime, lead_id: int) -> str:
    """Run the pipeline until the lead stops moving (waits cut short)."""
    from leadrelay.worker.pipeline import process

    make_due(rt, lead_id)
    outcome = process(rt, lead_id, owner="w")
    while outcome in ("retry", "throttled", "waiting"):
        make_due(rt, lead_id)
        outcome = process(rt, lead_id, owner="w")
    return outcome


def make_due(rt: Runtime, lead_id: int) -> None:
    """Let the lead's waits pass now: the retry schedule's, and an unanswered create's landing time.

    Both are tested on their own (the second in tests/delivery/test_exactly_once.py).
    """
    from leadrelay.db import utcnow

    landing = timedelta(seconds=rt.settings.nexudus_timeout + rt.settings.write_landing_seconds)
    with transaction(rt.sessions) as session:
        session.execute(
            update(Lead)
            .where(Lead.id == lead_id)
            .values(
                next_attempt_at=utcnow(),
                create_sent_at=case(
                    (Lead.create_sent_at.is_(None), None),
                    else_=Lead.create_sent_at - literal(landing, type_=Interval()),
                ),
            )
        )


def at_once(calls: Iterable[Callable[[], T]]) -> list[T]:
    """Run the calls in threads started together; their results, in the calls' order."""
    calls = list(calls)
    results: list[Any] = [None] * len(calls)

    def run(index: int, call: Callable[[], T]) -> None:
        results[index] = call()

    threads = [threading.Thread(target=run, args=pair) for pair in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@contextmanager
def socket_server(answer: Callable[[socket.socket, threading.Event], None]) -> Iterator[str]:
    """A one-connection-at-a-time TCP server on loopback for misbehaving peers; yields its URL.

    ``answer`` talks to each accepted connection (closed after it) and should give
    up when the event is set: the server is stopping.
    """
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                answer(conn, stop)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def wait_for(
    check: Callable[[], bool], *, timeout: float = 30, interval: float = 0.1, what: str = ""
) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or check}")
        time.sleep(interval)


def unsettled(url: str) -> int:
    """Leads not yet in a final state (-1 while the database cannot be read, e.g. restarting)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(Lead)
                    .where(Lead.state.not_in([state.value for state in TERMINAL_STATES]))
                ).scalar_one()
            )
    except Exception:
        return -1
    finally:
        engine.dispose()


@contextmanager
def logging_restored() -> Iterator[None]:
    """Logs as they were before the block: a test that configures them onto its captured stderr
    (which pytest closes after the test) leaves the tests that follow logging where they did."""
    root, output = logging.getLogger(), logs._output
    stream, threshold, handlers, level = output.stream, output.threshold, root.handlers[:], root.level
    try:
        yield
    finally:
        output.stream, output.threshold = stream, threshold
        root.handlers[:] = handlers
        root.setLevel(level)


def broker_messages(client: Any, queue: str) -> list[tuple[str, Any]]:
    """(task name, first argument) of each Celery message waiting in a Redis queue, oldest first."""
    found = []
    for raw in reversed(client.lrange(queue, 0, -1)):  # kombu LPUSHes, the worker takes from the right
        message = json.loads(raw)
        args = json.loads(base64.b64decode(message["body"]))[0]
        found.append((message["headers"]["task"], args[0]))
    return found
