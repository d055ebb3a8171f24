"""What a statement's plan reads of ``leads`` to find its rows (Postgres), for the tests of plans."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import text

from leadrelay.driver import Step
from leadrelay.runtime import Runtime


def rows_read_and_dropped(plan: dict[str, Any]) -> int:
    """Rows of ``leads`` that a scan read and then dropped by a filter, over the whole plan."""
    dropped = 0
    if plan.get("Relation Name") == "leads":
        dropped += sum(int(plan.get(f"Rows Removed by {what}", 0)) for what in ("Filter", "Index Recheck"))
    for child in plan.get("Plans", []):
        dropped += rows_read_and_dropped(child)
    return dropped


def dropped(runtime: Runtime, seed: Step, sql: str, params: dict[str, Any]) -> int:
    """Rows the statement's plan reads and drops, run after ``seed`` in a transaction rolled back."""
    with runtime.sessions() as session:
        session.execute(*seed)
        # no statistics yet and only index scans: the generic plan of a statement prepared
        # while the table was small, kept as it grew (with fresh statistics the planner read
        # the whole table instead: a sequential scan, the same rows)
        session.execute(text("SET LOCAL enable_seqscan = off"))
        session.execute(text("SET LOCAL enable_bitmapscan = off"))
        explained = session.connection().exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
        found = explained.scalar_one()
    return rows_read_and_dropped((json.loads(found) if isinstance(found, str) else found)[0]["Plan"])
