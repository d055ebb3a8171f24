"""``leadrelay introductions``: competing broker introductions, with their deadlines."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from leadrelay.cli.app import app, console, routing_or_fail
from leadrelay.models import Lead
from leadrelay.runtime import Runtime
from leadrelay.worker import introductions
from leadrelay.worker.introductions import describe


def _left(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds <= 0:
        return "expired"
    hours, minutes = divmod(seconds // 60, 60)
    return f"{hours}h {minutes:02d}m"


def _name(lead: Lead) -> str:
    return ((lead.lead or {}).get("contact") or {}).get("full_name") or lead.identity or "-"


@app.command("introductions")
def introductions_command(
    all_: Annotated[bool, typer.Option("--all", help="also those past the rejection window")] = False,
) -> None:
    """Later introductions of a client already introduced by another broker, with the time left to reject."""
    routing = routing_or_fail()
    hours = routing.defaults.rejection_window_hours
    rt = Runtime.load(routing=routing)
    try:
        with rt.sessions() as session:
            rows = introductions.competing(session, rejection_hours=hours, include_expired=all_)
            flags = introductions.possible_duplicates(session)
    finally:
        rt.close()
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
                str(row.lead.id),
                escape(_name(row.lead)),
                escape(row.lead.location or "-"),
                escape(describe(routing, row.lead)),
                row.lead.received_at.strftime("%Y-%m-%d %H:%M"),
                escape(describe(routing, row.first)),
                row.first.received_at.strftime("%Y-%m-%d %H:%M"),
                str(row.lead.opportunity_id or row.first.opportunity_id or "pending"),
                row.deadline.strftime("%Y-%m-%d %H:%M"),
                _left(row.time_left),
            )
        console.print(table)
    if flags:
        table = Table(
            title="Possible duplicates (same company, similar name) — check by hand", title_justify="left"
        )
        for column in ("lead", "client", "other lead", "other client", "company", "similarity"):
            table.add_column(column, overflow="fold")
        for flag, lead, other in flags:
            company = ((lead.lead or {}).get("contact") or {}).get("company") or "-"
            table.add_row(
                str(lead.id),
                escape(_name(lead)),
                str(other.id),
                escape(_name(other)),
                escape(company),
                f"{flag.score:.0f}%",
            )
        console.print(table)
