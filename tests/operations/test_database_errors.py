"""A failing statement's error names the statement, never the personal data bound to it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from leadrelay.db import make_engine
from tests.operations.support import PERSON


@pytest.fixture(params=["postgres", "sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    return str(request.getfixturevalue("clean_db"))


def test_a_failing_statement_does_not_carry_its_bound_values(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with pytest.raises(DBAPIError) as failed, engine.connect() as conn:
            conn.execute(text("SELECT :email AS email FROM no_such_table"), {"email": PERSON["email"]})
    finally:
        engine.dispose()
    assert "no_such_table" in str(failed.value)
    assert PERSON["email"] not in str(failed.value)
    assert PERSON["email"] not in repr(failed.value)
