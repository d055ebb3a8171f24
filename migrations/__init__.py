"""Alembic migrations for the ledger; they run on PostgreSQL and SQLite alike."""
