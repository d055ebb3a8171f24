"""Putting lead ids on the broker. Only ever after the ledger commit."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

import structlog
from amqp.exceptions import ChannelError

from leadrelay import unit_of_work as units
from leadrelay.worker.celery_app import LEADS_QUEUE, app

if TYPE_CHECKING:
    from leadrelay.runtime import Runtime

log = structlog.get_logger(__name__)

PROCESS_TASK = "leadrelay.process_lead"
NOT_FOUND = 404
ENQUEUE_BATCH = 500  # messages per Redis pipeline
NO_KWARGS_REPR = "{}"


def args_repr(lead_id: int) -> str:
    """The message's ``argsrepr`` header, as Celery's ``saferepr([lead_id])`` writes it.

    Given to ``send_task`` (Celery's documented ``argsrepr``/``kwargsrepr`` options), it
    spares Celery its generic ``saferepr`` walk for every message (~25 % of the CPU of
    a publish, measured in bench/results/PROFILE.md).
    """
    return f"[{lead_id}]"


def enqueue(lead_ids: Iterable[int]) -> int:
    """Publish one message per lead; return how many reached the broker.

    The messages of one call go out together where the transport can batch them
    (kombu's ``Producer.batch``: one Redis pipeline, one round trip); elsewhere one
    by one. A broker failure is logged, not raised: the rows are in the ledger and
    the sweeper will enqueue them again. After a failed batch the count is 0 (some
    may have gone out: a second message for a lead is harmless).
    """
    ids = list(lead_ids)
    sent = 0
    try:
        with app.producer_or_acquire() as producer, producer.batch(max_size=ENQUEUE_BATCH):
            for lead_id in ids:
                app.send_task(
                    PROCESS_TASK,
                    args=[lead_id],
                    argsrepr=args_repr(lead_id),
                    kwargsrepr=NO_KWARGS_REPR,
                    queue=LEADS_QUEUE,
                    producer=producer,
                    # no retry: a reconnect in the middle of a batch would forget the declaration
                    # that the batch's later messages count on (they declare nothing, below)
                    retry=False,
                    # the first message declares the queue (kombu remembers it per connection);
                    # the others name none: Celery would bind a fresh copy of it to the channel
                    # for each message, ~35 % of a publish's CPU (cProfile, 5,000 messages)
                    declare=None if sent == 0 else [],
                )
                sent += 1
    except Exception as exc:  # kombu raises transport-specific errors
        log.warning("enqueue_failed", error=type(exc).__name__, sent=0, of=len(ids))
        return 0
    return sent


def unit_of_work(rt: Runtime) -> AbstractContextManager[units.UnitOfWork]:
    """A ledger transaction whose enqueued leads go to the broker once it has committed.

    ``with unit_of_work(rt) as uow: … uow.enqueue(lead_id)``; see :mod:`leadrelay.unit_of_work`.
    """
    return units.unit_of_work(rt, publish=enqueue)


def waiting(queue: str = LEADS_QUEUE) -> int | None:
    """Messages waiting in ``queue``, or None when the broker cannot say."""
    try:
        with app.connection_for_read() as conn:
            # every transport's channel has queue_declare; kombu's stubs type default_channel as
            # the bare StdChannel interface, which does not list it
            channel = conn.default_channel
            return int(channel.queue_declare(queue=queue, passive=True).message_count)  # type: ignore[attr-defined]
    except ChannelError as exc:
        if getattr(exc, "code", None) == NOT_FOUND or "NOT_FOUND" in str(exc):
            return 0  # Redis drops an empty list; RabbitMQ lost a non-durable queue
        return None
    except Exception:
        return None
