"""One unit of work: enqueued leads are published after the commit, never on a rollback."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from leadrelay.db import transaction, utcnow
from leadrelay.intake.store import record_inbound
from leadrelay.models import Lead
from leadrelay.routing import Routing
from leadrelay.runtime import Runtime
from leadrelay.unit_of_work import UnitOfWork, unit_of_work
from leadrelay.worker import queue
from leadrelay.worker.sweeper import sweep
from tests.conftest import make_settings
from tests.helpers import canonical


class Broker(list[list[int]]):
    """Stands in for the broker; each call also records whether its leads were committed by then."""

    def __init__(self, rt: Runtime, *, refuse: bool = False) -> None:
        super().__init__()
        self.rt = rt
        self.refuse = refuse
        self.visible: list[int] = []

    def __call__(self, lead_ids: list[int]) -> int:
        self.append(lead_ids)
        with self.rt.sessions() as other:  # another connection sees only what is committed
            self.visible = list(other.execute(select(Lead.id).where(Lead.id.in_(lead_ids))).scalars())
        if self.refuse:
            raise ConnectionRefusedError("broker down")
        return len(lead_ids)


@pytest.fixture
def rt(clean_db: str, routing: Routing) -> Iterator[Runtime]:
    runtime = Runtime.load(make_settings(database_url=clean_db), routing)
    yield runtime
    runtime.close()


def record(uow: UnitOfWork) -> int:
    lead_id = record_inbound(
        uow.session,
        channel="canonical",
        source="webhook",
        intake_key=f"test:{uuid.uuid4().hex}",
        body=json.dumps(canonical()).encode(),
        content_type="application/json",
    ).lead_id
    uow.enqueue(lead_id)
    return lead_id


def stored(rt: Runtime) -> int:
    with rt.sessions() as session:
        return int(session.execute(select(func.count()).select_from(Lead)).scalar_one())


def test_what_a_unit_enqueues_is_published_once_after_its_commit(rt: Runtime) -> None:
    broker = Broker(rt)
    with unit_of_work(rt, publish=broker) as uow:
        first, second = record(uow), record(uow)
        uow.enqueue(first)  # twice in one unit: one message
        assert broker == []  # nothing before the commit
    assert broker == [[first, second]]
    assert broker.visible == [first, second]  # committed when published
    assert uow.published == 2


def test_a_unit_that_raises_rolls_back_and_publishes_nothing(rt: Runtime) -> None:
    broker = Broker(rt)
    with pytest.raises(RuntimeError, match="midway"), unit_of_work(rt, publish=broker) as uow:
        record(uow)
        raise RuntimeError("midway")
    assert broker == []
    assert stored(rt) == 0
    assert uow.published == 0


def test_a_unit_that_enqueues_nothing_does_not_call_the_broker(rt: Runtime) -> None:
    broker = Broker(rt)
    with unit_of_work(rt, publish=broker) as uow:
        uow.session.execute(select(1))
    assert broker == []


def test_a_lead_committed_but_not_published_is_brought_back_by_the_sweeper(rt: Runtime) -> None:
    broker = Broker(rt, refuse=True)
    with unit_of_work(rt, publish=broker) as uow:  # the broker's failure is not the caller's
        lead_id = record(uow)
    assert (broker.visible, uow.published, stored(rt)) == ([lead_id], 0, 1)
    with transaction(rt.sessions) as session:  # its message would have been consumed by now
        session.execute(
            update(Lead).where(Lead.id == lead_id).values(enqueued_at=utcnow() - timedelta(minutes=5))
        )
    swept = Broker(rt)
    sweep(rt, enqueue=swept)
    assert swept == [[lead_id]]


def test_the_worker_layers_unit_publishes_to_the_broker(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    broker = Broker(rt)
    monkeypatch.setattr(queue, "enqueue", broker)
    with queue.unit_of_work(rt) as uow:
        lead_id = record(uow)
    assert broker == [[lead_id]]
    assert broker.visible == [lead_id]
