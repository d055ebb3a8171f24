"""``leadrelay retention`` and ``leadrelay erase``: personal data out of the ledger."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from leadrelay.cli.app import Json, app, cli_actor, cli_runtime, console, fail, print_json
from leadrelay.settings import get_settings

NEXUDUS_ADVICE = (
    "Nexudus keeps its own copy of this person: erase the customer (and their opportunities) in "
    "Nexudus too — Settings › Customers, or the Nexudus API."
)


def _leads(count: int) -> str:
    return f"{count} lead" if count == 1 else f"{count} leads"


@app.command()
def retention(
    days: Annotated[
        int | None, typer.Option(min=1, help="purge what is older (default LEADRELAY_RETENTION_DAYS)")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="count what would be purged, change nothing")] = False,
    as_json: Json = False,
) -> None:
    """Purge raw input and personal fields of finished leads older than N days (ids and states stay).

    --json: {"cutoff", "dry_run", "leads", "by_state": {...}, "dead_letters_closed", "cache_rows"}.
    """
    from leadrelay.worker.retention import count_due, cutoff_for, purge_expired

    keep = days if days is not None else get_settings().retention_days
    if keep <= 0:
        fail("retention is off (LEADRELAY_RETENTION_DAYS=0): give --days N to purge once")
    rt = cli_runtime()
    try:
        with rt.sessions() as session:
            total = count_due(session, cutoff_for(keep))
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, console=console, transient=True, disable=as_json) as bar:
            task = bar.add_task("counting" if dry_run else "purging", total=total)
            report = purge_expired(rt, days=keep, dry_run=dry_run, progress=lambda n: bar.advance(task, n))
    finally:
        rt.close()
    if as_json:
        print_json({**dataclasses.asdict(report), "by_state": dict(sorted(report.by_state.items()))})
        return
    verb = "would be purged" if dry_run else "purged"
    table = Table(title=f"Leads received before {report.cutoff:%Y-%m-%d %H:%M} UTC", title_justify="left")
    table.add_column("state")
    table.add_column(verb, justify="right")
    for state, count in sorted(report.by_state.items()):
        table.add_row(state, str(count))
    table.add_row("[bold]all[/]", f"[bold]{report.leads}[/]")
    console.print(table)
    console.print(
        f"Dead letters closed: {report.dead_letters_closed}. "
        f"Nexudus customer cache entries forgotten: {report.cache_rows}"
        + (" (dry run: nothing changed)." if dry_run else ".")
    )


@app.command()
def erase(
    email: Annotated[str, typer.Option(help="the person's e-mail address")],
    dry_run: Annotated[bool, typer.Option(help="list what would be erased, change nothing")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")] = False,
    as_json: Json = False,
) -> None:
    """GDPR erasure: remove one person's data from the ledger (audited; Nexudus keeps its own copy).

    --json (with --dry-run or --yes): {"reference", "lead_ids", "stopped", "dead_letters_closed",
    "cache_rows", "in_nexudus": [...]}.
    """
    from leadrelay.worker.erasure import erase_when_idle, find_leads

    if as_json and not (dry_run or yes):
        fail("--json asks no questions: add --dry-run or --yes")

    rt = cli_runtime()
    try:
        with rt.sessions() as session:
            found = find_leads(session, email)
        if not dry_run and found and not yes:
            typer.confirm(
                f"Erase the personal data of {_leads(len(found))}? This cannot be undone", abort=True
            )
        # a lead a worker is delivering right now is waited for, never taken from it
        wait = rt.settings.lease_seconds + rt.settings.nexudus_timeout
        report = erase_when_idle(rt.sessions, email, actor=cli_actor(), wait_seconds=wait, dry_run=dry_run)
    finally:
        rt.close()
    if as_json:
        print_json({**dataclasses.asdict(report), "dry_run": dry_run})
        return
    if not report.lead_ids:
        console.print(
            "No lead in the ledger names this address." + ("" if dry_run else " Recorded in the audit log.")
        )
    else:
        verb = "Would erase" if dry_run else "Erased"
        console.print(f"{verb} {_leads(len(report.lead_ids))}: {', '.join(map(str, report.lead_ids))}.")
        if report.stopped:
            console.print(f"Stopped before delivery: {', '.join(map(str, report.stopped))}.")
        if not dry_run:
            console.print(
                f"Dead letters closed: {report.dead_letters_closed}; customer cache entries removed: "
                f"{report.cache_rows}; audit reference {report.reference}."
            )
    if report.in_nexudus:
        table = Table(title="In Nexudus", title_justify="left")
        for column in ("account", "customer (Coworker) id", "opportunity id"):
            table.add_column(column)
        for record in report.in_nexudus:
            opportunity = str(record.opportunity_id or "-")
            if record.may_exist_as:
                opportunity = f"maybe, named {record.may_exist_as!r} (its create was never answered)"
            table.add_row(record.account or "-", str(record.coworker_id or "-"), opportunity)
        console.print(table)
    console.print(NEXUDUS_ADVICE)
