"""The receiver's group commit: webhooks that arrive together are stored in one batch, each answered alone."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
import pytest
from sqlalchemy import create_engine

from leadrelay.intake import store as intake_store
from leadrelay.intake.store import Inbound, Intake, PoolIntakeStore, conninfo

Answer = tuple[Intake, bool]


def inbound(key: str, content_type: str = "application/json") -> Inbound:
    return Inbound("canonical", "webhook", key, key.encode(), content_type, {"delivery_id": key})


def stored_keys(url: str) -> dict[int, str]:
    with psycopg.connect(url, autocommit=True) as conn:
        return dict(conn.execute("SELECT id, intake_key FROM leads").fetchall())  # type: ignore[arg-type]


def run(url: str, size: int, scenario: Callable[[PoolIntakeStore], Awaitable[Any]]) -> Any:
    async def opened() -> Any:
        store = PoolIntakeStore(url, size=size)
        await store.open()
        try:
            return await scenario(store)
        finally:
            await store.close()

    return asyncio.run(opened())


@pytest.fixture
def batches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of each batch the store runs."""
    sizes: list[int] = []
    insert = intake_store._insert

    async def counted(conn: Any, batch: list[Any]) -> list[Intake]:
        sizes.append(len(batch))
        return await insert(conn, batch)

    monkeypatch.setattr(intake_store, "_insert", counted)
    return sizes


def test_items_that_arrive_together_are_stored_in_batches_each_answered_with_its_own_row(
    clean_db: str, batches: list[int]
) -> None:
    url = conninfo(create_engine(clean_db))
    keys = [f"together-{n}" for n in range(40)]

    async def scenario(store: PoolIntakeStore) -> list[Answer]:
        return await asyncio.gather(*(store.record(inbound(key)) for key in keys))

    answers = run(url, 3, scenario)
    assert sum(batches) == len(keys) and max(batches) > 1, batches  # fewer commits than items
    rows = stored_keys(url)
    assert [rows[intake.lead_id] for intake, _ in answers] == keys  # each answer names its own row
    assert all(not intake.duplicate and publish for intake, publish in answers)


def test_a_key_twice_in_one_batch_is_one_row_published_once(clean_db: str, batches: list[int]) -> None:
    url = conninfo(create_engine(clean_db))
    keys = ["twice", "twice", "once", "twice"]

    async def scenario(store: PoolIntakeStore) -> list[Answer]:
        await store.record(inbound("known"))
        return await asyncio.gather(*(store.record(inbound(key)) for key in [*keys, "known"]))

    answers = run(url, 1, scenario)  # one batch in flight at a time: the five gather in one
    assert batches == [1, 5]
    (first, p1), (again, p2), (once, p3), (third, p4), (known, p5) = answers
    assert not first.duplicate and p1 and not once.duplicate and p3
    assert again == third == Intake(lead_id=first.lead_id, duplicate=True) and not p2 and not p4
    assert known.duplicate and not p5
    rows = stored_keys(url)
    assert sorted(rows.values()) == ["known", "once", "twice"]
    assert rows[first.lead_id] == "twice" and rows[once.lead_id] == "once" and rows[known.lead_id] == "known"


def test_an_item_postgres_refuses_fails_alone_and_the_rest_of_its_batch_is_stored(
    clean_db: str, batches: list[int]
) -> None:
    """Hostile input is normal input: one sender's bad item costs the others nothing."""
    url = conninfo(create_engine(clean_db))
    items = [inbound("good-1"), inbound("bad", content_type="text/\x00plain"), inbound("good-2")]

    async def scenario(store: PoolIntakeStore) -> tuple[list[Answer | BaseException], Answer]:
        answers = await asyncio.gather(*(store.record(item) for item in items), return_exceptions=True)
        return answers, await store.record(inbound("after"))  # the connection is fit for the next

    (good_1, bad, good_2), after = run(url, 1, scenario)
    assert isinstance(bad, psycopg.DataError), bad
    assert batches[0] == 3  # refused whole (stored nothing), then each item alone
    assert isinstance(good_1, tuple) and isinstance(good_2, tuple)
    assert not good_1[0].duplicate and good_1[1] and not good_2[0].duplicate and good_2[1]
    assert sorted(stored_keys(url).values()) == ["after", "good-1", "good-2"]
    assert not after[0].duplicate


def test_a_request_given_up_while_its_batch_is_stored_costs_the_others_nothing(clean_db: str) -> None:
    url = conninfo(create_engine(clean_db))

    async def scenario(store: PoolIntakeStore) -> list[Answer | BaseException]:
        tasks = [asyncio.ensure_future(store.record(inbound(f"k{n}"))) for n in range(5)]
        await asyncio.sleep(0)  # every one queued for its batch
        tasks[2].cancel()  # its sender hung up
        return await asyncio.gather(*tasks, return_exceptions=True)

    answers = run(url, 1, scenario)
    assert isinstance(answers[2], asyncio.CancelledError)
    kept = [answer for n, answer in enumerate(answers) if n != 2]
    assert all(isinstance(answer, tuple) and answer[1] for answer in kept)
    # its row may be stored: the sweeper publishes it, as after a sender that hung up before
    assert {"k0", "k1", "k3", "k4"} <= set(stored_keys(url).values())
