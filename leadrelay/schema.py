"""Running the Alembic migrations from code (``leadrelay migrate``, embedded start)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

# The migrations stand beside the core (they import leadrelay.db, never the other way):
# Alembic finds them as package data, so this module does not import them.
SCRIPT_LOCATION = "leadrelay:migrations"


def _config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["url"] = url
    return config


def upgrade(url: str) -> None:
    """Bring the ledger schema to the latest revision."""
    command.upgrade(_config(url), "head")


def pending(engine: Engine) -> bool:
    """True when the database is not at the latest revision."""
    head = ScriptDirectory.from_config(_config(str(engine.url))).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return current != head
