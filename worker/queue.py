"""Putting lead ids on the broker. Only ever after the ledger commit."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

import structlog
from amqp.exceptions import ChannelError

from leadrelay import unit_of_work as units
from leadrelay.worker.celery_app import CONTROL_QUEUE, FAN_OUT_TASK, LEADS_QUEUE, app

if TYPE_CHECKING:
    from leadrelay.runtime import Runtime

log = structlog.get_logger(__name__)

PROCESS_TASK = "leadrelay.process_lead"
NOT_FOUND = 404
ENQUEUE_BATCH = 500  # messages per Redis pipeline
FAN_OUT_MOST = 1000  # lead ids in one fan-out message (~8 KB of JSON)
_BIGINT = 2**63  # leads.id is a BIGINT
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


def announce(lead_ids: Iterable[int]) -> int:
    """Hand committed leads to the broker in as few messages as it takes; return how many ids it took.

    The receiver's publish. One id goes as its own message (:func:`enqueue`: no extra
    hop at the rates an operator sees). More go as one ``leadrelay.fan_out`` message per
    :data:`FAN_OUT_MOST` ids, on the control queue (which every worker consumes beside
    the leads queue, so a backlog of leads does not hold it up), and the worker that
    takes it publishes one message per lead (:func:`publish_each`). The receiver thus pays
    one publish a batch instead of one a webhook (~0.2 ms of its CPU a webhook at its
    maximum rate, bench/PROFILE.md, thirteenth pass). A broker failure is logged, not
    raised, as in :func:`enqueue`: the rows are in the ledger and the sweeper enqueues
    what never reached the broker.
    """
    ids = list(lead_ids)
    if len(ids) <= 1:
        return enqueue(ids)
    sent = 0
    try:
        with app.producer_or_acquire() as producer:
            for start in range(0, len(ids), FAN_OUT_MOST):
                chunk = ids[start : start + FAN_OUT_MOST]
                app.send_task(
                    FAN_OUT_TASK,
                    args=[chunk],
                    argsrepr=f"[<{len(chunk)} lead ids>]",
                    kwargsrepr=NO_KWARGS_REPR,
                    queue=CONTROL_QUEUE,
                    producer=producer,
                    retry=False,
                )
                sent += len(chunk)
    except Exception as exc:  # kombu raises transport-specific errors
        log.warning("enqueue_failed", error=type(exc).__name__, sent=sent, of=len(ids))
    return sent


def publish_each(lead_ids: list[object]) -> tuple[int, int]:
    """A fan-out message's ids, one process message each (the ``leadrelay.fan_out`` task).

    The message came from a receiver, but the broker is not the ledger and is not
    trusted to be well-formed: at most :data:`FAN_OUT_MOST` ids are read, each a
    positive 64-bit integer, each once; the rest is skipped and counted in a log line.
    A redelivered fan-out message (its worker died) publishes its ids again: a second
    message for a lead is harmless. Returns how many ids were read, and how many of
    them reached the broker.
    """
    read = lead_ids[:FAN_OUT_MOST]
    ids = list(dict.fromkeys(item for item in read if type(item) is int and 0 < item < _BIGINT))
    if len(ids) < len(lead_ids):
        log.warning("fan_out_skipped", skipped=len(lead_ids) - len(ids))
    return len(ids), enqueue(ids)


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
