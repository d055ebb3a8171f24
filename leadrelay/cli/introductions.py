"""``leadrelay introductions``: competing broker introductions, with their deadlines."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from leadrelay.cli.app import Json, app, console, print_json, routing_or_fail
from leadrelay.models import Lead, PossibleDuplicate
from leadrelay.routing import Routing
from leadrelay.runtime import Runtime
from leadrelay.worker import introductions
from leadrelay.worker.introductions import Competing, describe


def _left(seconds: int) -> str:
    if seconds <= 0:
        return "expired"
    hours, minutes = divmod(seconds // 60, 60)
    return f"{hours}h {minutes:02d}m"


def _name(lead: Lead) -> str:
    return ((lead.lead or {}).get("contact") or {}).get("full_name") or lead.identity or "-"


def _competing(routing: Routing, rows: list[Competing]) -> list[dict[str, Any]]:
    return [
        {
            "lead": row.lead.id,
            "client": _name(row.lead),
            "location": row.lead.location,
            "later_introduction": describe(routing, row.lead),
            "received_at": row.lead.received_at,
            "first_lead": row.first.id,
            "first_introduced_by": describe(routing, row.first),
            "first_received_at": row.first.received_at,
            "opportunity_id": row.lead.opportunity_id or row.first.opportunity_id,
            "reject_by": row.deadline,
            "seconds_left": max(0, int(row.time_left.total_seconds())),
        }
        for row in rows
    ]


def _flags(flags: list[tuple[PossibleDuplicate, Lead, Lead]]) -> list[dict[str, Any]]:
    return [
        {
            "lead": lead.id,
            "client": _name(lead),
            "other_lead": other.id,
            "other_client": _name(other),
            "company": ((lead.lead or {}).get("contact") or {}).get("company"),
            "similarity": round(flag.score, 1),
        }
        for flag, lead, other in flags
    ]


@app.command("introductions")
def introductions_command(
    all_: Annotated[bool, typer.Option("--all", help="also those past the rejection window")] = False,
    as_json: Json = False,
) -> None:
    """Later introductions of a client already introduced by another broker, with the time left to reject.

    --json: {"competing": [...], "possible_duplicates": [...]}.
    """
    routing = routing_or_fail()
    hours = routing.defaults.rejection_window_hours
    rt = Runtime.load(routing=routing)
    try:
        with rt.sessions() as session:
            rows = _competing(
                routing, introductions.competing(session, rejection_hours=hours, include_expired=all_)
            )
            flags = _flags(introductions.possible_duplicates(session))
    finally:
        rt.close()
    if as_json:
        print_json({"rejection_window_hours": hours, "competing": rows, "possible_duplicates": flags})
        return
    if not rows:
        console.print(
            f"No competing introductions{'' if all_ else f' within the {hours} h rejection window'}."
        )
    else:
        table = Table(title=f"Competing introductions (reject within {hours} h)", title_justify="left")
        for column in (
            "lead",
            "client",
            "location",
            "later introduction",
            "received",
            "first introduced by",
            "first received",
            "opportunity",
            "reject by",
            "left",
        ):
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(
                str(row["lead"]),
                escape(row["client"]),
                escape(row["location"] or "-"),
                escape(row["later_introduction"]),
                f"{row['received_at']:%Y-%m-%d %H:%M}",
                escape(row["first_introduced_by"]),
                f"{row['first_received_at']:%Y-%m-%d %H:%M}",
                str(row["opportunity_id"] or "pending"),
                f"{row['reject_by']:%Y-%m-%d %H:%M}",
                _left(row["seconds_left"]),
            )
        console.print(table)
    if flags:
        table = Table(
            title="Possible duplicates (same company, similar name) — check by hand", title_justify="left"
        )
        for column in ("lead", "client", "other lead", "other client", "company", "similarity"):
            table.add_column(column, overflow="fold")
        for flag in flags:
            table.add_row(
                str(flag["lead"]),
                escape(flag["client"]),
                str(flag["other_lead"]),
                escape(flag["other_client"]),
                escape(flag["company"] or "-"),
                f"{flag['similarity']:.0f}%",
            )
        console.print(table)
