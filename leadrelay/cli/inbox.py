"""``leadrelay poll``: one pass over the configured inboxes, and what it did; ``leadrelay inbox
authorize`` (an OAuth2 sign-in) and ``leadrelay inbox status`` (is each inbox being read)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from leadrelay.cli.app import Json, app, console, errors, fail, print_json, routing_or_fail

if TYPE_CHECKING:
    from leadrelay.inbox_health import InboxHealth
    from leadrelay.worker.imap.poll import PollReport

COLUMNS = ("new", "duplicate", "failed")


def _table(reports: list[PollReport]) -> Table:
    table = Table(title="Inbox poll", title_justify="left")
    table.add_column("inbox")
    for column in COLUMNS:
        table.add_column(column, justify="right")
    table.add_column("marked processed")
    table.add_column("notes")
    for report in reports:
        notes = []
        if report.rescanned:
            notes.append("UIDVALIDITY changed: folder re-scanned")
        if report.left:
            notes.append(f"{report.left} left for the next pass")
        if report.rerouted:
            notes.append(f"{report.rerouted} earlier unrouted mail routed and replayed")
        if report.retries:
            notes.append(f"{report.retries} reconnects")
        if report.error:
            notes.append("[red]not polled[/]" if not report.marked else "[red]stopped[/]")
        marked = f"{report.marked} {report.marks}" if report.marked else "0"
        counts = [str(getattr(report, column)) for column in COLUMNS]
        table.add_row(report.inbox, *counts, marked, "; ".join(notes))
    return table


class _Broker:
    """Enqueues new leads, remembering those the broker did not take (the sweeper will)."""

    def __init__(self) -> None:
        from leadrelay.worker.queue import enqueue

        self._enqueue = enqueue
        self.unsent = 0

    def __call__(self, lead_ids: list[int]) -> int:
        sent = self._enqueue(lead_ids)
        self.unsent += len(lead_ids) - sent
        return sent


@app.command()
def poll(
    inbox: Annotated[str | None, typer.Option("--inbox", "-i", help="only this inbox")] = None,
    as_json: Json = False,
) -> None:
    """Poll the configured IMAP inboxes once: new, duplicate and failed mail per inbox.

    New mail is stored raw and queued: the workers sort and read it (its channel, its
    sender, its leads). Failed: too big to read, a dead letter at once.

    --json: {"inboxes": [{"inbox", "new", "duplicate", "failed", "marked", ...}], "not_enqueued"}.
    """
    from sqlalchemy.exc import DBAPIError

    from leadrelay import logs
    from leadrelay.cli.commands import ready_ledger
    from leadrelay.runtime import Runtime
    from leadrelay.settings import get_settings
    from leadrelay.worker.imap.poll import poll_inbox

    routing = routing_or_fail()
    if not routing.inboxes:
        fail("no inboxes configured: add an inboxes: section to the routing file (docs/inboxes.md)")
    configured = ", ".join(sorted(routing.inboxes))
    if inbox is not None and inbox not in routing.inboxes:
        fail(f"no inbox named {inbox!r} in the routing file (configured: {configured})")
    ready_ledger()
    logs.configure("ERROR")  # what went wrong is in the table and the error lines below it
    broker = _Broker()
    runtime = Runtime.load(get_settings(), routing)
    try:
        reports = [
            poll_inbox(runtime, name, enqueue=broker) for name in ([inbox] if inbox else routing.inboxes)
        ]
    except DBAPIError as exc:
        fail(f"the ledger database failed mid-poll ({type(exc.orig).__name__}): check LEADRELAY_DATABASE_URL")
    finally:
        runtime.close()
    if as_json:
        rows = [
            {**report.summary(), "marks": report.marks, "lead_ids": report.lead_ids} for report in reports
        ]
        print_json({"inboxes": rows, "not_enqueued": broker.unsent})
    else:
        console.print(_table(reports))
    if broker.unsent and not as_json:
        console.print(
            f"{broker.unsent} new leads are in the ledger but the broker did not take them: "
            "the sweeper (`leadrelay beat`) enqueues them once it is reachable."
        )
    failed = [report for report in reports if report.error]
    for report in failed:
        errors.print(
            f"[bold red]error:[/] inbox {report.inbox}: {report.error}", highlight=False, soft_wrap=True
        )
    if failed:
        raise typer.Exit(1)


def _browser(url: str) -> None:
    import webbrowser

    webbrowser.open(url)  # without one (a server), the address printed above is enough


inbox_app = typer.Typer(
    help="Inbox sign-ins: OAuth2 consent for Microsoft 365 and Google.", no_args_is_help=True
)
app.add_typer(inbox_app, name="inbox")


@inbox_app.command("authorize")
def authorize(
    name: Annotated[str, typer.Argument(help="the inbox's name in the routing file")],
    flow: Annotated[
        str | None,
        typer.Option(help="device (Microsoft 365) or loopback (Google); default: the one configured"),
    ] = None,
    browser: Annotated[bool, typer.Option(help="loopback: open the browser on this machine")] = True,
) -> None:
    """Sign in to an inbox's mailbox account and store its OAuth2 refresh token in the ledger.

    The poller uses the newest stored token, and keeps each rotated one there too.
    """
    from leadrelay.cli.commands import ready_ledger
    from leadrelay.db import transaction
    from leadrelay.runtime import Runtime
    from leadrelay.settings import get_settings
    from leadrelay.worker.imap import authorize as flows
    from leadrelay.worker.imap import oauth, tokens

    routing = routing_or_fail()
    config = routing.inboxes.get(name)
    if config is None:
        configured = ", ".join(sorted(routing.inboxes)) or "none"
        fail(f"no inbox named {name!r} in the routing file (configured: {configured})")
    oauth2, where = config.oauth2, f"inboxes.{name}.oauth2"
    if oauth2 is None or oauth2.grant != "refresh_token":
        fail(f"{where}: authorize needs an oauth2 block with grant: refresh_token (docs/inboxes.md)")
    chosen = flow or ("device" if oauth2.device_authorization_url else "loopback")
    if chosen not in ("device", "loopback"):
        fail(f"--flow {chosen!r}: use device or loopback")
    ready_ledger()

    def show(line: str) -> None:
        console.print(line, highlight=False, soft_wrap=True)

    try:
        if chosen == "device":
            granted = flows.device_flow(oauth2, where=where, show=show, timeout=config.timeout_seconds)
        else:
            granted = flows.loopback_flow(
                oauth2,
                where=where,
                show=show,
                open_browser=_browser if browser else None,
                timeout=config.timeout_seconds,
            )
    except flows.AuthorizeError as err:
        fail(f"inbox {name}: {err}")
    runtime = Runtime.load(get_settings(), routing)
    try:
        with transaction(runtime.sessions) as session:
            tokens.authorized(session, name, client_id=oauth2.client_id, token=granted.refresh_token)
    finally:
        runtime.close()
    oauth.forget(oauth2)
    scope = f" for {granted.scope}" if granted.scope else ""
    console.print(
        f"[green]Authorized[/] inbox {name}{scope}: the refresh token is stored in the ledger (not shown). "
        "Pollers use it from their next pass; `leadrelay poll --inbox "
        f"{name}` tries it now.",
        highlight=False,
        soft_wrap=True,
    )


@inbox_app.command("status")
def status(as_json: Json = False) -> None:
    """Each configured inbox: ok, failing, stale or never polled, with its last error.

    Exits 1 when an inbox is stale (not read for LEADRELAY_INBOX_STALE_INTERVALS poll intervals).
    --json: {"inboxes": [{"inbox", "state", "last_poll_at", "last_success_at", "failures", ...}]}.
    """
    from leadrelay.cli.commands import ready_ledger
    from leadrelay.inbox_health import intervals, read_inbox_health
    from leadrelay.runtime import Runtime
    from leadrelay.settings import get_settings

    routing = routing_or_fail()
    if not routing.inboxes:
        fail("no inboxes configured: add an inboxes: section to the routing file (docs/inboxes.md)")
    ready_ledger()
    settings = get_settings()
    runtime = Runtime.load(settings, routing)
    try:
        with runtime.sessions() as session:
            found = read_inbox_health(
                session, intervals(routing), stale_intervals=settings.inbox_stale_intervals
            )
    finally:
        runtime.close()
    if as_json:
        print_json({"inboxes": [_health_row(health) for health in found]})
    else:
        console.print(_health_table(found))
    if any(health.stale for health in found):
        raise typer.Exit(1)


def _when(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M:%S}" if at else "–"


def _health_row(health: InboxHealth) -> dict[str, object]:
    return {
        "inbox": health.inbox,
        "state": health.state,
        "last_poll_at": health.polled_at,
        "last_success_at": health.last_ok_at,
        "failures": health.failures,
        "error_kind": health.error_kind,
        "last_error": health.last_error,
        "uidvalidity": health.uidvalidity,
        "last_uid": health.last_uid,
        "imported": health.imported,
    }


def _health_table(found: list[InboxHealth]) -> Table:
    table = Table(title="Inboxes (times in UTC)", title_justify="left")
    for column in ("inbox", "state", "last poll", "last success", "failures", "UIDVALIDITY", "imported"):
        table.add_column(column, justify="right" if column in ("failures", "imported") else "left")
    table.add_column("last error")
    colour = {"ok": "green", "failing": "yellow", "stale": "red", "never polled": "dim"}
    for health in found:
        error = f"{health.error_kind}: {health.last_error}" if health.last_error else ""
        table.add_row(
            health.inbox,
            f"[{colour[health.state]}]{health.state}[/]",
            _when(health.polled_at),
            _when(health.last_ok_at),
            str(health.failures),
            str(health.uidvalidity) if health.uidvalidity is not None else "–",
            str(health.imported),
            error,
        )
    return table
