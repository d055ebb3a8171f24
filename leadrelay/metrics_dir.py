"""Multiprocess metrics for the commands that fork: set up before prometheus_client is imported.

prometheus_client chooses, when it is first imported, whether metric values live
in this process's memory or in files under ``PROMETHEUS_MULTIPROC_DIR`` that every
process of the group writes and ``/metrics`` adds up. ``leadrelay serve`` (with
``--workers N``) and ``leadrelay worker`` (prefork pool children) need the files:
this gives each such command a private directory, unless the operator named one.
It is deliberately free of imports that could load prometheus_client first.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile

ENV = "PROMETHEUS_MULTIPROC_DIR"
FORKING_COMMANDS = frozenset({"serve", "worker"})


def prepare(argv: list[str]) -> str | None:
    """The metrics directory this command uses (created when needed), or None for in-memory metrics."""
    if os.environ.get(ENV):
        return os.environ[ENV]
    if len(argv) < 2 or argv[1] not in FORKING_COMMANDS or "prometheus_client" in sys.modules:
        return None
    path = tempfile.mkdtemp(prefix="leadrelay-metrics-")
    os.environ[ENV] = path
    creator = os.getpid()

    def remove() -> None:
        if os.getpid() == creator:  # forked pool children inherit this hook: only the creator cleans up
            shutil.rmtree(path, ignore_errors=True)

    atexit.register(remove)
    return path
