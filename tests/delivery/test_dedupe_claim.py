"""worker.dedupe.claim: a lead's keys claimed in one statement, on Postgres and SQLite alike."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session, sessionmaker

from leadrelay.db import make_engine, make_session_factory, transaction
from leadrelay.models import DedupeKey, Lead, LeadState
from leadrelay.worker.dedupe import claim
from tests.conftest import fresh_ledger


@pytest.fixture(params=["postgres", "sqlite"])
def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(fresh_ledger(request, tmp_path, request.param))
    yield make_session_factory(engine)
    engine.dispose()


def new_lead(sessions: sessionmaker[Session], n: int) -> int:
    with transaction(sessions) as session:
        lead = Lead(channel="canonical", source="webhook", intake_key=f"dedupe:{n}", raw_body=b"{}")
        lead.raw_sha256 = "0" * 64
        session.add(lead)
        session.flush()
        return lead.id


def held(sessions: sessionmaker[Session]) -> dict[str, int]:
    with sessions() as session:
        return {key: lead for key, lead in session.execute(select(DedupeKey.key, DedupeKey.lead_id))}


def claimed(sessions: sessionmaker[Session], lead_id: int, keys: list[str]) -> tuple[int | None, int]:
    """The verdict's owner, and how many statements the claim took (not SQLite's BEGIN IMMEDIATE)."""
    statements: list[str] = []
    engine = sessions.kw["bind"]
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        with transaction(sessions) as session:
            owner = claim(session, lead_id, keys).duplicate_of
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    return owner, len([sql for sql in statements if not sql.startswith("BEGIN")])


def test_a_new_lead_claims_both_its_keys_in_one_statement(sessions: sessionmaker[Session]) -> None:
    first = new_lead(sessions, 1)
    assert claimed(sessions, first, ["content:a", "ref:a"]) == (None, 1)
    assert held(sessions) == {"content:a": first, "ref:a": first}


def test_a_lead_meeting_an_owner_keeps_none_of_the_keys_it_won(sessions: sessionmaker[Session]) -> None:
    owner, copy = new_lead(sessions, 1), new_lead(sessions, 2)
    assert claimed(sessions, owner, ["ref:a"])[0] is None
    # its content differs (its own content key is free), its reference is the owner's
    verdict, statements = claimed(sessions, copy, ["content:b", "ref:a"])
    assert verdict == owner
    assert statements == 4  # the claim, who holds ref:a, is its owner dead, the won content key given back
    assert held(sessions) == {"ref:a": owner}


def test_a_lead_read_again_finds_its_own_keys(sessions: sessionmaker[Session]) -> None:
    lead_id = new_lead(sessions, 1)
    assert claimed(sessions, lead_id, ["content:a", "ref:a"])[0] is None
    assert claimed(sessions, lead_id, ["content:a", "ref:a"])[0] is None  # its own: not a duplicate
    assert claimed(sessions, lead_id, ["content:c", "ref:a"])[0] is None  # edited: a new content key too
    assert held(sessions) == {"content:a": lead_id, "content:c": lead_id, "ref:a": lead_id}


def test_more_keys_than_one_statement_holds_are_all_claimed(sessions: sessionmaker[Session]) -> None:
    owner, copy = new_lead(sessions, 1), new_lead(sessions, 2)
    assert claimed(sessions, owner, ["k:3"])[0] is None
    keys = ["k:1", "k:2", "k:3", "k:4", "k:5"]
    assert claimed(sessions, copy, keys) == (owner, 6)  # three claims, the holder, its state, a give-back
    assert held(sessions) == {"k:3": owner}


def test_a_copy_of_a_dead_lead_takes_its_keys_and_still_gives_back_what_it_won(
    sessions: sessionmaker[Session],
) -> None:
    dead, live, copy = new_lead(sessions, 1), new_lead(sessions, 2), new_lead(sessions, 3)
    assert claimed(sessions, dead, ["k:a"])[0] is None
    assert claimed(sessions, live, ["k:c"])[0] is None
    with transaction(sessions) as session:
        session.execute(update(Lead).where(Lead.id == dead).values(state=LeadState.dead))
    # k:a is the dead lead's (the copy takes it over), k:b is free, k:c a live lead's
    assert claimed(sessions, copy, ["k:a", "k:b", "k:c"])[0] == live
    assert held(sessions) == {"k:a": copy, "k:c": live}  # k:b, won before the dead owner was met, given back
