"""Putting lead ids on the broker. Only ever after the ledger commit."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

import structlog
from amqp.exceptions import ChannelError

from leadrelay import unit_of_work as units
from leadrelay.settings import get_settings
from leadrelay.worker.celery_app import CONTROL_QUEUE, FAN_OUT_TASK, LEADS_QUEUE, app

if TYPE_CHECKING:
    from leadrelay.runtime import Runtime

log = structlog.get_logger(__name__)

PROCESS_TASK = "leadrelay.process_lead"
PROCESS_MANY_TASK = "leadrelay.process_leads"
NOT_FOUND = 404
ENQUEUE_BATCH = 500  # messages per Redis pipeline
FAN_OUT_MOST = 1000  # lead ids in one fan-out message (~8 KB of JSON)
MESSAGE_MOST = 100  # lead ids a process message is read for (leads_per_message is at most this)
_BIGINT = 2**63  # leads.id is a BIGINT
NO_KWARGS_REPR = "{}"


def args_repr(lead_id: int) -> str:
    """The message's ``argsrepr`` header, as Celery's ``saferepr([lead_id])`` writes it.

    Given to ``send_task`` (Celery's documented ``argsrepr``/``kwargsrepr`` options), it
    spares Celery its generic ``saferepr`` walk for every message (~25 % of the CPU of
    a publish, measured in bench/results/PROFILE.md).
    """
    return f"[{lead_id}]"


def messages(lead_ids: list[int], *, spread: int, most: int) -> list[list[int]]:
    """The leads of one publish, cut into messages: one lead a message, unless there are many.

    A publish goes out in at least ``spread`` messages (``LEADRELAY_PUBLISH_SPREAD``:
    the workers' slots or more, so that none idles while another works through a
    message), or one a lead when it has fewer; past that, up to ``most`` leads
    (``LEADRELAY_LEADS_PER_MESSAGE``) share one, in messages of near-equal size, and
    Celery's own cost of a message (its parent's broker round trips, the pool's
    hand-over: about a quarter of a worker's CPU, bench/PROFILE.md, twenty-second
    pass) is shared by them.
    """
    count = min(len(lead_ids), max(spread, -(-len(lead_ids) // most)))
    size, larger = divmod(len(lead_ids), count) if count else (0, 0)
    cuts = [n * size + min(n, larger) for n in range(count + 1)]  # the first `larger` take one more
    return [lead_ids[start:end] for start, end in itertools.pairwise(cuts)]


def enqueue(lead_ids: Iterable[int]) -> int:
    """Publish the leads (one per message, or several if many: :func:`messages`); return how many went.

    The messages of one call go out together where the transport can batch them
    (kombu's ``Producer.batch``: one Redis pipeline, one round trip); elsewhere one
    by one. A broker failure is logged, not raised: the rows are in the ledger and
    the sweeper will enqueue them again. After a failed batch the count is 0 (some
    may have gone out: a second message for a lead is harmless).
    """
    ids = list(lead_ids)
    if not ids:
        return 0
    settings = get_settings()
    sent = 0
    try:
        with app.producer_or_acquire() as producer, producer.batch(max_size=ENQUEUE_BATCH):
            for chunk in messages(ids, spread=settings.publish_spread, most=settings.leads_per_message):
                one = len(chunk) == 1
                app.send_task(
                    PROCESS_TASK if one else PROCESS_MANY_TASK,
                    args=chunk if one else [chunk],
                    argsrepr=args_repr(chunk[0]) if one else f"[<{len(chunk)} lead ids>]",
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
                sent += len(chunk)
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
    takes it publishes them to the leads queue (:func:`publish_each`). The receiver thus pays
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
    """A fan-out message's ids, put on the leads queue by :func:`enqueue` (the ``leadrelay.fan_out`` task).

    The message came from a receiver, but the broker is not the ledger and is not
    trusted to be well-formed: at most :data:`FAN_OUT_MOST` ids are read, each a
    positive 64-bit integer, each once; the rest is skipped and counted in a log line.
    A redelivered fan-out message (its worker died) publishes its ids again: a second
    message for a lead is harmless. Returns how many ids were read, and how many of
    them reached the broker.
    """
    ids = lead_ids_in(lead_ids, most=FAN_OUT_MOST, skipped_event="fan_out_skipped")
    return len(ids), enqueue(ids)


def lead_ids_in(items: list[object], *, most: int, skipped_event: str) -> list[int]:
    """A message's lead ids, read as input: at most ``most``, each a positive 64-bit integer, once.

    What is skipped is counted in a ``skipped_event`` log line.
    """
    ids = list(dict.fromkeys(item for item in items[:most] if type(item) is int and 0 < item < _BIGINT))
    if len(ids) < len(items):
        log.warning(skipped_event, skipped=len(items) - len(ids))
    return ids


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
