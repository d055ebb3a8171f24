"""A prefork pool child rebuilds its runtime and never touches the parent's pooled connections.

The worker's main process runs the scheduler thread with a runtime of its own;
Celery forks pool children from it at any time (a child that died is replaced).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from leadrelay import runtime as runtime_module
from leadrelay.runtime import Runtime, current_runtime, reset_runtime


@pytest.fixture
def parent(clean_db: str) -> Iterator[Runtime]:
    reset_runtime()
    rt = current_runtime()
    yield rt
    reset_runtime()


def backend(rt: Runtime) -> int:
    with rt.engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def in_child(work: object) -> int:
    """Run ``work()`` in a forked child (10 s at most); its exit code."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's coverage is not collected
        signal.alarm(10)
        code = 1
        try:
            code = 0 if work() else 2  # type: ignore[operator]
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_a_child_drops_the_inherited_pool_without_closing_the_parents_connections(parent: Runtime) -> None:
    mine = backend(parent)  # a pooled connection, checked back in
    inherited_pool = parent.engine.pool

    def child() -> bool:
        rebuilt = current_runtime()
        ok = rebuilt is not parent and backend(rebuilt) != mine
        rebuilt.close()
        return ok and parent.engine.pool is not inherited_pool  # disposed, not closed

    assert in_child(child) == 0
    assert backend(parent) == mine  # the same connection, still open


def test_a_child_forked_while_another_thread_held_the_runtime_lock_does_not_hang(parent: Runtime) -> None:
    with runtime_module._current_lock:  # as if the scheduler thread were in current_runtime()
        code = in_child(lambda: current_runtime() is not parent)
    assert code == 0
