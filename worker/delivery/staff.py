"""An open opportunity staff (or another tool) already made for a known customer here."""

from __future__ import annotations

from leadrelay.nexudus.classify import Result
from leadrelay.nexudus.client import NexudusClient
from leadrelay.nexudus.payloads import Route
from leadrelay.worker.delivery.attempts import Hold

_BOARD_COLUMNS: dict[tuple[str, int], set[int]] = {}  # a location's board columns, per process


def open_opportunity_by_others(
    hold: Hold, client: NexudusClient, route: Route, coworker: int
) -> int | Result | None:
    """An open opportunity someone else (staff, another tool) made for this customer here."""
    found = hold.call("opportunity.open", lambda guard: client.open_opportunities(coworker, guard=guard))
    if not found.ok:
        return found
    records = [r for r in found.value if not str(r.get("SystemId") or "").startswith("leadrelay:")]
    if not records:
        return None
    columns = _board_columns(hold, client, route)
    if isinstance(columns, Result):
        return columns
    mine = [r["Id"] for r in records if r.get("CrmBoardColumnId") in columns]
    return min(mine) if mine else None


def _board_columns(hold: Hold, client: NexudusClient, route: Route) -> set[int] | Result:
    column = route.location_config.board_column_id
    key = (route.account, column)
    if key not in _BOARD_COLUMNS:
        found = hold.call("board.columns", lambda guard: client.board_columns(column, guard=guard))
        if not found.ok:
            return found
        _BOARD_COLUMNS[key] = set(found.value)
    return _BOARD_COLUMNS[key]
