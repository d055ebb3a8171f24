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


@pytest.mark.parametrize(
    ("bad", "refused_by"),
    [
        (inbound("x" * 401), psycopg.errors.StringDataRightTruncation),  # Postgres: over the column's 400
        (inbound("nul", content_type="text/\x00plain"), psycopg.DataError),  # the driver, before sending
    ],
)
def test_an_item_that_cannot_be_stored_fails_alone_and_the_rest_of_its_batch_is_stored(
    clean_db: str, batches: list[int], bad: Inbound, refused_by: type[Exception]
) -> None:
    """Hostile input is normal input: one sender's bad item costs the others nothing."""
    url = conninfo(create_engine(clean_db))
    items = [inbound("good-1"), bad, inbound("good-2")]

    async def scenario(store: PoolIntakeStore) -> tuple[list[Answer | BaseException], Answer]:
        answers = await asyncio.gather(*(store.record(item) for item in items), return_exceptions=True)
        return answers, await store.record(inbound("after"))  # the connection is fit for the next

    (good_1, refused, good_2), after = run(url, 1, scenario)
    assert isinstance(refused, refused_by), refused
    assert batches[0] == 3  # refused whole (stored nothing), then each item alone
    assert isinstance(good_1, tuple) and isinstance(good_2, tuple)
    assert not good_1[0].duplicate and good_1[1] and not good_2[0].duplicate and good_2[1]
    assert sorted(stored_keys(url).values()) == ["after", "good-1", "good-2"]
    assert not after[0].duplicate


def test_a_batch_stores_its_rows_in_the_order_of_their_keys(clean_db: str, batches: list[int]) -> None:
    """Two batches in flight then wait for each other's keys in one order: never a deadlock."""
    url = conninfo(create_engine(clean_db))
    keys = ["k-d", "k-b", "k-c", "k-a"]

    async def scenario(store: PoolIntakeStore) -> list[Answer]:
        return await asyncio.gather(*(store.record(inbound(key)) for key in keys))

    run(url, 1, scenario)
    assert batches == [4]
    rows = stored_keys(url)  # ids come from a sequence, in the order the rows were inserted
    assert [rows[lead_id] for lead_id in sorted(rows)] == sorted(keys)


def test_when_reading_the_known_keys_fails_only_their_items_fail(
    clean_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The new rows are committed by then: they are answered, and published, whatever the read does."""
    url = conninfo(create_engine(clean_db))

    class Unreadable:  # the read of the known keys refused (a rare case, shaped here)
        sql = "SELECT id, intake_key FROM no_such_table WHERE intake_key = ANY(%(keys)s)"

        @staticmethod
        def params(values: dict[str, Any]) -> dict[str, Any]:
            return values

    async def scenario(store: PoolIntakeStore) -> list[Answer | BaseException]:
        await store.record(inbound("known"))
        monkeypatch.setattr(intake_store, "_HELD", Unreadable)
        items = [inbound("new-1"), inbound("known"), inbound("new-2")]
        return await asyncio.gather(*(store.record(item) for item in items), return_exceptions=True)

    new_1, known, new_2 = run(url, 1, scenario)
    assert isinstance(known, psycopg.errors.UndefinedTable), known
    assert isinstance(new_1, tuple) and isinstance(new_2, tuple)
    assert not new_1[0].duplicate and new_1[1] and not new_2[0].duplicate and new_2[1]


def test_two_batches_in_flight_and_a_request_given_up_meanwhile(
    clean_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While both batches wait on the ledger the rest gathers; a sender that hangs up costs nobody else."""
    url = conninfo(create_engine(clean_db))
    insert = intake_store._insert
    release = asyncio.Event()
    sizes: list[int] = []

    async def held_back(conn: Any, batch: list[Any]) -> list[Intake | Exception]:
        sizes.append(len(batch))
        await release.wait()
        return await insert(conn, batch)

    monkeypatch.setattr(intake_store, "_insert", held_back)

    async def taken(count: int) -> None:
        """Until ``count`` batches are held at the ledger (a pool connection may take a moment to open)."""
        for _ in range(5_000):
            if len(sizes) >= count:
                return
            await asyncio.sleep(0.002)
        raise AssertionError(f"batch {count} was never handed to the ledger: {sizes}")

    async def scenario(store: PoolIntakeStore) -> list[Answer | BaseException]:
        first = []
        for n in range(2):
            first.append(asyncio.ensure_future(store.record(inbound(f"k{n}"))))
            await taken(n + 1)  # its batch taken, and held
        rest = [asyncio.ensure_future(store.record(inbound(f"k{n}"))) for n in range(2, 8)]
        await asyncio.sleep(0)
        first[1].cancel()  # its sender hung up while its batch was in flight
        rest[0].cancel()  # and this one's while it waited for the next batch
        release.set()
        return await asyncio.gather(*first, *rest, return_exceptions=True)

    answers = run(url, 3, scenario)
    assert sizes == [1, 1, 5], sizes  # two in flight, then what gathered meanwhile (one gave up)
    assert isinstance(answers[1], asyncio.CancelledError) and isinstance(answers[2], asyncio.CancelledError)
    kept = [answer for n, answer in enumerate(answers) if n not in (1, 2)]
    assert all(isinstance(answer, tuple) and not answer[0].duplicate and answer[1] for answer in kept)
    # the row of the one cancelled in flight is stored all the same (the sweeper publishes it)
    assert set(stored_keys(url).values()) == {f"k{n}" for n in range(8)} - {"k2"}


def test_a_stuck_batch_fails_its_webhooks_in_time_and_frees_the_store(
    clean_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A statement that never answers (a half-open socket, shaped here) holds nobody for ever."""
    url = conninfo(create_engine(clean_db))
    insert = intake_store._insert
    monkeypatch.setattr(intake_store, "ANSWER_SECONDS", 0.3)

    async def stuck_once(conn: Any, batch: list[Any]) -> list[Intake | Exception]:
        if batch[0].key == "stuck":
            await asyncio.sleep(60)
        return await insert(conn, batch)

    monkeypatch.setattr(intake_store, "_insert", stuck_once)

    async def scenario(store: PoolIntakeStore) -> tuple[Answer | BaseException, Answer]:
        stuck = await asyncio.gather(store.record(inbound("stuck")), return_exceptions=True)
        return stuck[0], await store.record(inbound("next"))

    stuck, after = run(url, 1, scenario)  # one batch in flight at a time: the stuck one must let go
    assert isinstance(stuck, psycopg.OperationalError), stuck
    assert not after[0].duplicate and after[1]
    assert set(stored_keys(url).values()) == {"next"}
