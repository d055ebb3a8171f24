"""``leadrelay dlq``: the dead-letter queue for operators."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import subprocess
import tempfile
from collections import Counter
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from leadrelay.cli import filters
from leadrelay.cli.app import Json, app, cli_actor, cli_runtime, console, fail, print_json
from leadrelay.cli.views import print_story
from leadrelay.db import transaction, utcnow
from leadrelay.durations import parse_since
from leadrelay.ledger import search
from leadrelay.models import DeadLetterStatus, DeadReason
from leadrelay.runtime import Runtime
from leadrelay.worker import dead_letters
from leadrelay.worker.dead_letters import ActionRefused, Filter, Replayed

dlq = typer.Typer(help="List, inspect, replay, edit and discard dead letters.", no_args_is_help=True)
app.add_typer(dlq, name="dlq")


def _since(text: str | None) -> datetime | None:
    try:
        return parse_since(text)
    except ValueError as err:
        fail(f"--since {err}")


def _filter(
    channel: str | None, reason: DeadReason | None, since: str | None, status: str, limit: int
) -> Filter:
    chosen = None if status == "all" else DeadLetterStatus(status)
    return Filter(channel=channel, reason=reason, since=_since(since), status=chosen, limit=limit)


def _age(when: datetime) -> str:
    seconds = int((utcnow() - when).total_seconds())
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


Channel = Annotated[str | None, typer.Option(help="only this channel")]
Reason = Annotated[DeadReason | None, typer.Option(help="only this reason")]
Since = Annotated[str | None, typer.Option(help="only since: 2d, 12h, 30m or a date")]


@dlq.command("list")
def list_command(
    channel: Channel = None,
    reason: Reason = None,
    since: Since = None,
    status: Annotated[str, typer.Option(help="open, replayed, discarded, superseded or all")] = "open",
    email: filters.Email = None,
    phone: filters.Phone = None,
    name: filters.Name = None,
    reference: filters.Reference = None,
    opportunity: filters.Opportunity = None,
    coworker: filters.Coworker = None,
    state: filters.State = None,
    until: filters.Until = None,
    after: filters.After = None,
    limit: filters.Limit = 50,
    as_json: Json = False,
) -> None:
    """Dead letters, newest first, one page (--json: dead_letters, count, next_cursor, open_by_reason)."""
    if status != "all" and status not in DeadLetterStatus.__members__:
        fail(f"--status {status!r}: use one of {', '.join(DeadLetterStatus.__members__)} or all")
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
    c = replace(c, reason=reason.value if reason else None, status=None if status == "all" else status)
    rt = cli_runtime()
    try:
        with rt.sessions() as session:
            page = search.find_letters(session, c, after=after, limit=limit)
            total = search.count_letters(session, c)
            by_reason = dead_letters.counts(session)
    finally:
        rt.close()
    rows = page.rows
    if as_json:
        print_json(
            {
                "dead_letters": [dataclasses.asdict(row) for row in rows],
                "count": total,
                "next_cursor": page.next_cursor,
                "open_by_reason": by_reason,
            }
        )
        return
    if not rows:
        narrowed = set(c.described()) - {"status"}
        console.print("No dead letters match." if status != "open" or narrowed else "No open dead letters.")
        return
    table = Table(title=f"Dead letters ({status})", title_justify="left")
    for column, style in (
        ("id", "bold"),
        ("lead", ""),
        ("channel", ""),
        ("reason", "red"),
        ("ref", ""),
        ("age", ""),
        ("retries", ""),
        ("error", ""),
    ):
        table.add_column(column, style=style or None, overflow="fold")
    for row in rows:
        table.add_row(
            str(row.id),
            str(row.lead_id),
            escape(row.channel),
            row.reason,
            escape(row.external_id or "-"),
            _age(row.created_at),
            str(row.attempts),
            escape(row.message[:120]),
        )
    console.print(table)
    console.print(filters.next_page_hint("leadrelay dlq list", page.next_cursor, len(rows), total))
    summary = ", ".join(f"{n} {reason}" for reason, n in sorted(by_reason.items()))
    console.print(f"Open: {summary or 'none'}. Inspect one with [bold]leadrelay dlq show ID[/].")


_FIELD_NOTE = re.compile(
    r"(?:^|[—;:] )((?:contact|requirements|listing|broker|external_id|received_at|viewing_at)"
    r"[a-z_.]*): ([^;]+)"
)


def _fields_named(message: str) -> list[tuple[str, str]]:
    """The ``field.path: problem`` notes of a parse error's message, in order."""
    return [(m.group(1), m.group(2).strip()) for m in _FIELD_NOTE.finditer(message)]


def _mail_parts(meta: dict[str, Any]) -> list[tuple[str, str]]:
    """Which lead of a mail that held several, and the files attached to the mail (kept, not read)."""
    rows = []
    if meta.get("part"):
        rows.append(("part", f"{meta['part']} of the mail recorded as lead {meta.get('parent', '?')}"))
    files = meta.get("attachments") or []
    if files:
        listed = ", ".join(f"{f.get('name')} ({f.get('type')}, {f.get('bytes', 0):,} bytes)" for f in files)
        more = meta.get("attachments_more")
        rows.append(("attachments", listed + (f" and {more} more" if more else "")))
    return rows


@dlq.command("show")
def show_command(
    letter_id: Annotated[int, typer.Argument(help="dead letter id")],
    raw: Annotated[bool, typer.Option(help="print the whole raw input")] = False,
) -> None:
    """Everything about one dead letter: why, every attempt, the lead, the raw input."""
    rt = cli_runtime()
    try:
        with rt.sessions() as session:
            found = dead_letters.detail(session, letter_id)
    finally:
        rt.close()
    letter, lead = found.letter, found.lead
    summary = Table.grid(padding=(0, 2))
    for key, value in (
        ("dead letter", f"{letter.id} ({letter.status})"),
        ("reason", letter.reason),
        ("error", letter.message),
        ("lead", f"{lead.id} · {lead.channel} · {lead.source} · state {lead.state}"),
        ("reference", lead.external_id or "-"),
        ("received", lead.received_at.isoformat(timespec="seconds")),
        ("died", letter.created_at.isoformat(timespec="seconds")),
        ("resolution", letter.resolution or "-"),
        *_mail_parts(lead.raw_meta or {}),
    ):
        summary.add_row(f"[bold]{key}[/]", escape(str(value)))
    console.print(Panel(summary, title=f"Dead letter {letter.id}", title_align="left"))
    fields = _fields_named(letter.message) if letter.reason == DeadReason.parse_error else []
    if fields:
        table = Table(title="Fields to fix", title_justify="left")
        table.add_column("field")
        table.add_column("problem", overflow="fold")
        for path, problem in fields:
            table.add_row(path, escape(problem))
        console.print(table)
        console.print(
            f"Fix them with [bold]leadrelay dlq edit {letter.id}[/]: the lead opens as far as it was read."
        )
    errors = letter.detail.get("errors") or []
    if errors:
        table = Table(title="Nexudus errors", title_justify="left")
        for column in ("PropertyName", "Message", "AttemptedValue"):
            table.add_column(column, overflow="fold")
        for error in errors:
            table.add_row(*(escape(str(error.get(k))) for k in ("PropertyName", "Message", "AttemptedValue")))
        console.print(table)
    print_story(found.attempts, found.canonical_json, found.raw_text, lead.content_type, whole=raw)


def _replay_all(rt: Runtime, ids: list[int], *, dry_run: bool) -> list[Replayed]:
    from leadrelay.worker.queue import unit_of_work

    results: list[Replayed] = []
    actor = cli_actor()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("dry run" if dry_run else "replaying", total=len(ids))
        for letter_id in ids:
            try:
                with unit_of_work(rt) as uow:
                    result = dead_letters.replay(
                        uow.session, letter_id, actor=actor, routing=rt.routing, dry_run=dry_run
                    )
                    if result.enqueue:
                        uow.enqueue(result.lead_id)
            except ActionRefused as err:
                result = Replayed(letter_id, 0, "refused", str(err))
            results.append(result)
            progress.advance(task)
    return results


@dlq.command("replay")
def replay_command(
    letter_ids: Annotated[list[int] | None, typer.Argument(help="dead letter ids")] = None,
    all_: Annotated[bool, typer.Option("--all", help="every open dead letter matching the filters")] = False,
    channel: Channel = None,
    reason: Reason = None,
    since: Since = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show what would be replayed")] = False,
) -> None:
    """Send dead letters through again. A lead never gets a second opportunity."""
    if bool(letter_ids) == all_:
        fail("give dead letter ids, or --all (with --channel/--reason/--since to narrow it)")
    rt = cli_runtime()
    try:
        if all_:
            with rt.sessions() as session:
                ids = dead_letters.matching_ids(session, _filter(channel, reason, since, "open", 1))
            if not ids:
                console.print("No open dead letters match.")
                return
        else:
            ids = list(letter_ids or [])
        results = _replay_all(rt, ids, dry_run=dry_run)
    finally:
        rt.close()
    tally = Counter(r.outcome for r in results)
    table = Table(title="Replay" + (" (dry run)" if dry_run else ""), title_justify="left")
    for column in ("dead letter", "lead", "outcome", "detail"):
        table.add_column(column, overflow="fold")
    for result in results[:200]:
        table.add_row(
            str(result.letter_id), str(result.lead_id or "-"), result.outcome, escape(result.message)
        )
    console.print(table)
    console.print(", ".join(f"{n} {outcome}" for outcome, n in sorted(tally.items())))
    if tally.get("refused") and not all_:
        raise typer.Exit(1)


def _edit_in_editor(initial: dict[str, Any]) -> Path:
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    handle, name = tempfile.mkstemp(prefix="leadrelay-lead-", suffix=".json")
    path = Path(name)
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        json.dump(initial, out, indent=2, ensure_ascii=False)
        out.write("\n")
    subprocess.run([*shlex.split(editor), str(path)], check=False)  # noqa: S603 - the operator's own editor
    return path


@dlq.command("edit")
def edit_command(
    letter_id: Annotated[int, typer.Argument(help="dead letter id")],
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="read the edited lead from this JSON file")
    ] = None,
) -> None:
    """Correct a dead lead's canonical JSON (in $EDITOR or from a file), validate it, replay it."""
    from leadrelay.worker.queue import unit_of_work

    rt = cli_runtime()
    try:
        if file is None:
            with rt.sessions() as session:
                initial = dead_letters.editable_lead(session, letter_id, routing=rt.routing)
            file = _edit_in_editor(initial)
            console.print(f"Edited lead saved in {file}")
        try:
            edited = json.loads(file.read_text("utf-8"))
        except OSError as err:
            fail(f"cannot read {file}: {err.strerror}")
        except json.JSONDecodeError as err:
            fail(f"{file} is not JSON ({err}); fix it and run: leadrelay dlq edit {letter_id} --file {file}")
        if not isinstance(edited, dict):
            fail(f"{file} must hold a JSON object (the canonical lead)")
        try:
            with unit_of_work(rt) as uow:
                result = dead_letters.edit(
                    uow.session, letter_id, edited, actor=cli_actor(), routing=rt.routing
                )
                if result.enqueue:
                    uow.enqueue(result.lead_id)
        except ActionRefused as err:
            fail(f"{err}; fix it and run: leadrelay dlq edit {letter_id} --file {file}")
    finally:
        rt.close()
    console.print(result.message)


@dlq.command("discard")
def discard_command(
    letter_id: Annotated[int, typer.Argument(help="dead letter id")],
    why: Annotated[str, typer.Option("--why", help="the reason, kept in the audit log")],
) -> None:
    """Close a dead letter without delivering it."""
    rt = cli_runtime()
    try:
        with transaction(rt.sessions) as session:
            dead_letters.discard(session, letter_id, actor=cli_actor(), why=why)
    finally:
        rt.close()
    console.print(f"Dead letter {letter_id} discarded.")
