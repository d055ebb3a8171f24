"""Alembic environment: the ledger URL from leadrelay's settings, batch mode for SQLite."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection

from leadrelay import models  # registers the tables
from leadrelay.db import Base, make_engine
from leadrelay.settings import get_settings

config = context.config


def _url() -> str:
    return config.attributes.get("url") or get_settings().ledger_url()


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=Base.metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(_url())
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def _compared(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Everything but the search's expression indexes, which only the migration describes."""
    return not (type_ == "index" and name in models.SEARCH_EXPRESSION_INDEXES)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table
        compare_type=True,
        include_object=_compared,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
