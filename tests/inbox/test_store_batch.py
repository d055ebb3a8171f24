"""The poll's batch store (worker/imap/store.py, store_messages) decides as one message at a time would.

Real Postgres; no IMAP server needed: the batch is what a FETCH returned. The
race — another poller storing a message between the batch's lookup and its
INSERT — is shaped by hiding the ledger from the lookup once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from sqlalchemy import func, select

from leadrelay.db import transaction
from leadrelay.models import Lead
from leadrelay.runtime import Runtime
from leadrelay.testing.mails import enquiries, vary
from leadrelay.worker.imap import store
from leadrelay.worker.imap.intake import Outcome, Place, Recorded
from leadrelay.worker.imap.store import store_message, store_messages
from tests.conftest import fresh_ledger, make_settings, routing_with


def _at(uid: int) -> Place:
    return Place("leads", "INBOX", 1, uid)


def _store(rt: Runtime, *raws: bytes, first_uid: int = 1) -> list[Recorded]:
    found: list[Any] = [(raw, _at(first_uid + n), None) for n, raw in enumerate(raws)]
    with transaction(rt.sessions) as session:
        return store_messages(session, found, routing=rt.routing, default=None)


def _rows(rt: Runtime) -> int:
    with rt.sessions() as session:
        return session.execute(select(func.count()).select_from(Lead)).scalar_one()


@pytest.fixture(params=["postgres", "sqlite"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Runtime]:
    """A runtime on a fresh ledger of each kind: Postgres stores a batch from arrays, SQLite row by row."""
    rt = Runtime.load(
        make_settings(database_url=fresh_ledger(request, tmp_path, request.param)), routing_with()
    )
    yield rt
    rt.close()


def test_a_batch_stores_each_message_once_in_order_and_knows_its_copies(ledger: Runtime) -> None:
    rt = ledger
    one, two, three = (mail.raw for mail in enquiries(3))
    reused = vary(two, {}, message_id="<x@one.example>")  # another mail under one's Message-ID
    first = vary(one, {}, message_id="<x@one.example>")

    got = _store(rt, first, two, first, reused, three, reused)

    assert [r.settled for r in got] == [None, None, Outcome.duplicate, None, None, Outcome.duplicate]
    assert got[2].lead_id == got[0].lead_id and got[5].lead_id == got[3].lead_id
    assert [r.lead_id for r in got if r.settled is None] == sorted(
        r.lead_id for r in got if r.settled is None
    )
    assert _rows(rt) == 4
    with rt.sessions() as session:
        keys = {lead_id: key for lead_id, key in session.execute(select(Lead.id, Lead.intake_key))}
    assert keys[got[3].lead_id] == keys[got[0].lead_id] + "#" + store.mail_keys(reused).body_sha256[:32]

    again = _store(rt, three, first, reused, first_uid=10)  # the same mail in another pass
    assert [(r.settled, r.lead_id) for r in again] == [
        (Outcome.duplicate, got[4].lead_id),
        (Outcome.duplicate, got[0].lead_id),
        (Outcome.duplicate, got[3].lead_id),
    ]
    assert _rows(rt) == 4


def test_a_message_another_poller_stored_meanwhile_is_decided_again(make_runtime) -> None:
    rt = make_runtime({})
    one, two = (mail.raw for mail in enquiries(2))
    with transaction(rt.sessions) as session:  # the other poller's, committed before our INSERT
        theirs = store_message(
            session, one, place=Place("team", "INBOX", 1, 7), routing=rt.routing, default=None
        )
    lookups: list[set[str]] = []
    real = store._holders

    def first_sees_nothing(session: Any, keys: set[str]) -> dict[str, Any]:
        lookups.append(keys)  # the batch's lookup ran before their commit: it saw nothing
        return {} if len(lookups) == 1 else real(session, keys)

    with patch.object(store, "_holders", first_sees_nothing):
        got = _store(rt, one, two, one)

    assert [r.settled for r in got] == [Outcome.duplicate, None, Outcome.duplicate]
    assert got[0].lead_id == got[2].lead_id == theirs.lead_id
    assert _rows(rt) == 2
    assert len(lookups) == 2  # the first message looked up again, alone
