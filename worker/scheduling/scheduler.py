"""The scheduler loop: every candidate runs it, the one holding the lease does the work.

Each tick a candidate takes or renews the lease (``lease``); while it leads, it
claims and runs the jobs that are due (``jobs``). It runs in a daemon thread of
every ``leadrelay worker`` main process (``in_worker``) and in ``leadrelay beat``,
so the sweep goes on as long as any of them is up, and a dead leader is replaced
within ``scheduler_lease_seconds`` and a tick. A clean stop resigns at once.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta

import structlog

from leadrelay.db import transaction
from leadrelay.routing import Routing
from leadrelay.runtime import Runtime
from leadrelay.worker.scheduling.jobs import Claim, Job, claim_due, finish
from leadrelay.worker.scheduling.lease import Leadership, resign, take_or_renew

log = structlog.get_logger(__name__)

JobsFor = Callable[[Runtime], Sequence[Job]]


def candidate_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Scheduler:
    def __init__(self, *, runtime: Callable[[], Runtime], jobs: JobsFor, name: str | None = None) -> None:
        self.name = name or candidate_name()
        self._runtime = runtime
        self._jobs_for = jobs
        self._jobs: tuple[Runtime, Routing, Sequence[Job]] | None = None
        self._term: int | None = None  # the term we lead in, None while following
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def leading(self) -> bool:
        return self._term is not None

    def interval(self) -> float:
        """Seconds between ticks: the sweep's interval, and often enough to renew the lease."""
        settings = self._runtime().settings
        return min(settings.sweep_interval_seconds, settings.scheduler_lease_seconds / 3)

    def tick(self) -> list[str]:
        """Take or renew the lease; while leading, run what is due. Returns the jobs run."""
        rt = self._runtime()
        rt.refresh_routing()  # a changed routing file: new inboxes polled from this tick on
        lease_seconds = rt.settings.scheduler_lease_seconds
        with transaction(rt.sessions) as session:
            lead = take_or_renew(session, holder=self.name, seconds=lease_seconds)
        self._note(lead)
        if lead is None:
            return []
        with transaction(rt.sessions) as session:
            claims = claim_due(
                session, self._jobs_of(rt), holder=self.name, stale_after=timedelta(seconds=lease_seconds)
            )
        return [claim.job.name for claim in claims if self._run(rt, claim)]

    def _jobs_of(self, rt: Runtime) -> Sequence[Job]:
        if self._jobs is None or self._jobs[0] is not rt or self._jobs[1] is not rt.routing:
            self._jobs = (rt, rt.routing, self._jobs_for(rt))
        return self._jobs[2]

    def _note(self, lead: Leadership | None) -> None:
        term = None if lead is None else lead.term
        if term != self._term:
            if term is not None:
                log.info("scheduler_leading", scheduler=self.name, term=term)
            else:
                log.info("scheduler_following", scheduler=self.name)
        self._term = term

    def _run(self, rt: Runtime, claim: Claim) -> bool:
        try:
            claim.job.run()
        except Exception as exc:
            log.warning("scheduled_job_failed", job=claim.job.name, error=type(exc).__name__)
            ok = False
        else:
            ok = True
        with transaction(rt.sessions) as session:
            finish(session, claim, ok=ok)
        return ok

    def run(self, stop: threading.Event | None = None) -> None:
        """Tick until ``stop`` (or :meth:`stop`) is set; then resign if leading."""
        stop = stop or self._stop
        try:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    self.tick()
                except Exception as exc:  # the ledger is unreachable: keep trying, follow meanwhile
                    log.warning("scheduler_tick_failed", scheduler=self.name, error=type(exc).__name__)
                    self._note(None)
                stop.wait(max(0.0, self.interval() - (time.monotonic() - started)))
        finally:
            self.resign()

    def resign(self) -> None:
        if not self.leading:
            return
        rt = self._runtime()
        try:
            with transaction(rt.sessions) as session:
                resign(session, holder=self.name)
        except Exception as exc:  # the lease lapses on its own
            log.warning("scheduler_resign_failed", scheduler=self.name, error=type(exc).__name__)
        else:
            log.info("scheduler_resigned", scheduler=self.name)
        self._term = None

    def start(self) -> None:
        """Run in a daemon thread (a worker's main process)."""
        self._thread = threading.Thread(target=self.run, name="leadrelay-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
