"""The receiver's routing reload: on SIGHUP, and when the file changes (a look every few seconds).

The new file is validated whole by :meth:`~leadrelay.runtime.Runtime.refresh_routing`
before it replaces the running one; only then are the doors (one per webhook channel,
secrets resolved) rebuilt. A bad file keeps the old routing and doors: the door keeps
answering, and the log says why, one line per problem.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Coroutine
from typing import Any

import structlog
from anyio import to_thread
from fastapi import FastAPI

from leadrelay.errors import ConfigurationError
from leadrelay.intake.webhooks import open_doors
from leadrelay.runtime import Reload, Runtime

log = structlog.get_logger(__name__)


class ReceiverReload:
    def __init__(self, app: FastAPI, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime
        self._tasks: set[asyncio.Task[None]] = set()
        self._signalled = False

    async def reload(self, *, force: bool = False) -> Reload:
        result = await to_thread.run_sync(lambda: self.runtime.refresh_routing(force=force, logins=False))
        if result.outcome == "reloaded":
            try:
                self.app.state.doors = open_doors(self.runtime.routing)
            except ConfigurationError as err:  # a secret gone between the check and now
                log.warning("routing_doors_kept", problem=str(err))
        return result

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        if threading.current_thread() is threading.main_thread():  # a served process, not a test's thread
            loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
            self._signalled = True
        every = self.runtime.settings.routing_watch_seconds
        if every > 0 and self.runtime.settings.config is not None:
            self._spawn(self._watch(every))

    def _on_sighup(self) -> None:
        log.info("routing_reload_requested", by="SIGHUP")
        self._spawn(self._reload_logged(force=True))

    async def _reload_logged(self, *, force: bool) -> None:
        try:
            await self.reload(force=force)
        except Exception:  # never the receiver's end: the old routing stays
            log.exception("routing_reload_failed")

    async def _watch(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            await self._reload_logged(force=False)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        if self._signalled:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
