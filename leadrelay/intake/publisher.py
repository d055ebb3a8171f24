"""The receiver's publish: the ids of committed leads, put on the broker in batches behind the answer.

A crash between commit and publish loses nothing: the row is ``received`` with
``enqueued_at`` = its receipt, and the sweeper re-enqueues it once
``requeue_after_seconds`` have passed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog
from anyio import to_thread

log = structlog.get_logger(__name__)

# seconds a batch waits for more ids before it goes: no sender waits for it, and batches of one
# or two ids cost the receiver ~1.4 ms of CPU a webhook at 500/s (PROFILE.md, seventh pass)
LINGER_SECONDS = 0.02
MOST_WAITING = 50_000  # ids waiting for the broker in one process; past it the sweeper publishes them


class Publisher:
    """Publishes committed lead ids in batches, behind the answer.

    :meth:`submit` queues an id and returns at once: the sender's 202 follows the
    commit (DESIGN.md §1), not the broker. One task drains the queue: after
    ``linger`` seconds for the batch to fill, one worker-thread call of ``send``
    (the synchronous publish, ``worker.queue.announce``: one message for the batch,
    which a worker fans out to one per lead; it logs a broker failure and never raises) for
    every id that arrived meanwhile. A broker that is down or slow therefore never
    holds a webhook up; what it fails to take, and what a killed process had not
    sent yet, the sweeper publishes once ``requeue_after_seconds`` have passed (the
    rows are ``received``, ``enqueued_at`` their receipt). :meth:`close` sends what
    waits at the receiver's shutdown, for a bounded time.
    """

    def __init__(
        self,
        send: Callable[[list[int]], int],
        *,
        linger: float = LINGER_SECONDS,
        most_waiting: int = MOST_WAITING,
    ) -> None:
        self.send = send
        self.linger = linger
        self.most_waiting = most_waiting
        self._waiting: list[int] = []
        self._task: asyncio.Task[None] | None = None
        self._left = 0  # ids left to the sweeper since the queue was last full

    def submit(self, lead_id: int) -> None:
        """Queue ``lead_id`` for the next batch; never waits, never raises."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain())
        if len(self._waiting) >= self.most_waiting:  # the broker has been unreachable for a while
            if not self._left:  # once per episode, not once per webhook
                log.warning("publish_queue_full", waiting=len(self._waiting), left_to="sweeper")
            self._left += 1
            return  # committed: the sweeper publishes it
        if self._left:
            log.warning("publish_queue_drained", left_to_sweeper=self._left)
            self._left = 0
        self._waiting.append(lead_id)

    async def flush(self) -> None:
        """Return once every id submitted so far was handed to ``send``."""
        while self._task is not None:
            await asyncio.shield(self._task)

    async def close(self, timeout: float) -> None:
        """Flush for at most ``timeout`` seconds, then give up the rest (the sweeper's)."""
        try:
            await asyncio.wait_for(self.flush(), timeout)
        except TimeoutError:
            unsent = len(self._waiting)
            if self._task is not None:  # a send stuck on the broker: its thread is abandoned
                self._task.cancel()
            log.warning("publish_abandoned", unsent=unsent, left_to="sweeper")

    async def _drain(self) -> None:
        try:
            while self._waiting:
                await asyncio.sleep(self.linger)  # let the batch fill: its fixed cost is most of a small one
                batch, self._waiting = self._waiting, []
                try:
                    await to_thread.run_sync(self.send, batch, abandon_on_cancel=True)
                except Exception as exc:  # the rows are committed: the sweeper publishes them later
                    log.warning("enqueue_failed", error=type(exc).__name__, sent=0)
        finally:
            self._task = None
