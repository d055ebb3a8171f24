"""``leadrelay leads``: find any lead (not only dead ones) and show one."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from leadrelay import queries
from leadrelay.cli import filters
from leadrelay.cli.app import Json, app, cli_runtime, console, fail, print_json
from leadrelay.cli.views import print_story
from leadrelay.ledger import search

leads = typer.Typer(help="Find leads by e-mail, phone, name, reference or Nexudus id; show one.")
app.add_typer(leads, name="leads", no_args_is_help=True)


@leads.command("list")
def list_command(
    email: filters.Email = None,
    phone: filters.Phone = None,
    name: filters.Name = None,
    reference: filters.Reference = None,
    opportunity: filters.Opportunity = None,
    coworker: filters.Coworker = None,
    channel: filters.Channel = None,
    state: filters.State = None,
    since: filters.Since = None,
    until: filters.Until = None,
    after: filters.After = None,
    limit: filters.Limit = 50,
    as_json: Json = False,
) -> None:
    """Leads matching every filter, newest first, one page (--json: leads, count, next_cursor)."""
    c = filters.criteria(
        email=email,
        phone=phone,
        name=name,
        reference=reference,
        opportunity=opportunity,
        coworker=coworker,
        channel=channel,
        state=state,
        since=since,
        until=until,
    )
    rt = cli_runtime()
    try:
        with rt.sessions() as session:
            page = search.find_leads(session, c, after=after, limit=limit)
            total = search.count_leads(session, c)
    finally:
        rt.close()
    if as_json:
        rows = [dataclasses.asdict(row) for row in page.rows]
        print_json({"leads": rows, "count": total, "next_cursor": page.next_cursor})
        return
    if not page.rows:
        console.print("No leads match." if c.described() else "No leads yet.")
        return
    table = Table(title="Leads", title_justify="left")
    for column in ("id", "received", "channel", "ref", "name", "e-mail", "state", "opportunity"):
        table.add_column(column, overflow="fold", style="bold" if column == "id" else None)
    for row in page.rows:
        table.add_row(
            str(row.id),
            row.received_at.strftime("%Y-%m-%d %H:%M"),
            escape(row.channel),
            escape(row.external_id or "-"),
            escape(row.name or "-"),
            escape(row.email or "-"),
            row.state,
            str(row.opportunity_id or "-"),
        )
    console.print(table)
    console.print(filters.next_page_hint("leadrelay leads list", page.next_cursor, len(page.rows), total))


@leads.command("show")
def show_command(
    lead_id: Annotated[int, typer.Argument(help="lead id", min=1)],
    raw: Annotated[bool, typer.Option(help="print the whole raw input")] = False,
    as_json: Json = False,
) -> None:
    """One lead: its state, Nexudus ids, dead letters, attempts, canonical lead and raw input."""
    rt = cli_runtime()
    try:
        with rt.sessions() as session:
            view = queries.lead_view(session, lead_id)
    finally:
        rt.close()
    if view is None:
        fail(f"no lead {lead_id}")
    lead = view.lead
    text = "(purged)" if lead.raw_body is None else lead.raw_body.decode("utf-8", errors="replace")
    facts: dict[str, Any] = {
        "id": lead.id,
        "channel": lead.channel,
        "source": lead.source,
        "state": lead.state,
        "received_at": lead.received_at,
        "reference": lead.external_id,
        "account": lead.account,
        "coworker_id": lead.coworker_id,
        "opportunity_id": lead.opportunity_id,
        "opportunity_name": lead.opportunity_name,
        "duplicate_of": lead.duplicate_of,
        "attempts": lead.attempts,
        "last_error": lead.last_error,
        "delivered_at": lead.delivered_at,
        "dead_letters": [{"id": d.id, "reason": d.reason, "status": d.status} for d in view.dead_letters],
    }
    if as_json:
        print_json({**facts, "canonical_lead": lead.lead, "raw": text})
        return
    summary = Table.grid(padding=(0, 2))
    for key, value in facts.items():
        if key != "dead_letters":
            summary.add_row(f"[bold]{key}[/]", escape("-" if value is None else str(value)))
    for letter in view.dead_letters:
        summary.add_row("[bold]dead letter[/]", f"{letter.id} ({letter.reason}, {letter.status})")
    console.print(Panel(summary, title=f"Lead {lead.id}", title_align="left"))
    print_story(view.attempts, queries.pretty_lead(lead.lead), text, lead.content_type, whole=raw)
