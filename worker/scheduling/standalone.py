"""``leadrelay beat``: a scheduler candidate in a process of its own, until SIGTERM or SIGINT.

SIGHUP reloads the routing file (validated first; a bad one is kept out and logged).

It is the same loop the workers run: a hot standby while a worker leads, the
leader while none does. Deployments without it lose nothing.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

from leadrelay.runtime import current_runtime
from leadrelay.worker.routing_reload import on_sighup
from leadrelay.worker.scheduling.periodic import leadrelay_jobs
from leadrelay.worker.scheduling.scheduler import Scheduler


def run_until_signalled() -> None:
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    signal.signal(signal.SIGHUP, on_sighup)  # reload the routing now (each tick looks anyway)
    Scheduler(runtime=current_runtime, jobs=leadrelay_jobs).run(stop)
