"""The ledger's engine on Postgres: a connection attempt has a deadline, and the URL's own wins."""

from __future__ import annotations

import pytest

from leadrelay.db import CONNECT_TIMEOUT, make_engine


def connect_timeout_of(url: str) -> bytes | None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            libpq = conn.connection.driver_connection.pgconn  # type: ignore[union-attr]
            found: bytes | None = next(o.val for o in libpq.info if o.keyword == b"connect_timeout")
            return found
    finally:
        engine.dispose()


@pytest.mark.parametrize(("query", "expected"), [("", str(CONNECT_TIMEOUT)), ("?connect_timeout=3", "3")])
def test_a_connection_attempt_gives_up_in_time(pg_url: str, query: str, expected: str) -> None:
    # libpq's own default is none: a host that drops packets held a start-up for the TCP timeout
    assert connect_timeout_of(pg_url + query) == expected.encode()
