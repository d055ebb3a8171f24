"""leadrelay.heap: what is frozen leaves the collector's walk; the warm freeze comes once, after N units."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from leadrelay import heap


class Node:
    """A container the collector tracks."""

    def __init__(self) -> None:
        self.children: list[Node] = []


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()  # the test process's objects go back to the collector


def tracked(obj: object) -> bool:
    """Whether a full collection walks ``obj`` (frozen objects are in no generation)."""
    return any(o is obj for o in gc.get_objects())


def test_a_frozen_object_leaves_the_collectors_walk_and_a_later_one_does_not() -> None:
    before = Node()
    assert tracked(before)
    frozen = heap.freeze_long_lived("test")
    after = Node()
    # frozen objects may still be freed by reference counting (the count only falls after a freeze)
    assert frozen >= gc.get_freeze_count() > 1000  # the test process's modules, at the least
    assert not tracked(before)
    assert tracked(after)


def test_garbage_is_collected_before_the_freeze_not_kept_for_good() -> None:
    cycle = Node()
    cycle.children.append(cycle)
    del cycle  # unreachable, and only the collector can free a cycle
    counted = heap.freeze_long_lived("test")
    assert not any(isinstance(o, Node) for o in gc.get_objects())
    gc.unfreeze()
    assert not any(isinstance(o, Node) for o in gc.get_objects())  # freed, not frozen
    assert counted > 0


def test_the_warm_freeze_comes_once_after_its_units() -> None:
    warm = heap.WarmFreeze("test", after=3)
    early = Node()
    warm.tick()
    warm.tick()
    assert tracked(early) and gc.get_freeze_count() == 0
    warm.tick()
    assert not tracked(early)
    late = Node()
    for _ in range(10):
        warm.tick()
    assert tracked(late)  # no second freeze


def test_units_ending_on_many_threads_freeze_once(monkeypatch: pytest.MonkeyPatch) -> None:
    freezes: list[str] = []
    original = heap.freeze_long_lived

    def counted(where: str) -> int:
        freezes.append(where)
        return original(where)

    monkeypatch.setattr(heap, "freeze_long_lived", counted)
    warm = heap.WarmFreeze("test", after=500)

    def units() -> None:
        for _ in range(200):
            warm.tick()

    threads = [threading.Thread(target=units) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert freezes == ["test"]


def test_an_eager_task_never_freezes_a_process_that_is_not_a_worker() -> None:
    """Celery's task_postrun also follows ``.apply()`` in a test or a command: only a worker counts."""
    from leadrelay.worker import celery_app

    assert celery_app._WARM is None  # made by worker_init, in a worker only
    for _ in range(heap.WARM_UNITS + 1):
        celery_app._freeze_once_warm()
    assert gc.get_freeze_count() == 0
