"""``leadrelay demo``: the whole flow on a fresh machine, in real processes.

Starts a Nexudus sandbox, the receiver and a worker on the embedded default
(SQLite ledger, SQLite broker transport) in a throwaway directory, sends three
signed webhooks — a lead, the same lead again, and a lead Nexudus rejects — and
one portal notification e-mail (a HubbleHq viewing request, stored and sorted by
the inbox's own intake: there is no IMAP server in the demo), then shows what
Nexudus holds, the duplicate recognised and the dead letter. ``keep``: the stack
stays up afterwards, with the admin page, until Ctrl-C.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
import webbrowser
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy import select

from leadrelay.children import Child, free_port, run_cli, wait_http
from leadrelay.db import make_engine, make_session_factory
from leadrelay.intake.signatures import sign_standard
from leadrelay.models import TERMINAL_STATES, DeadLetter, Lead, LeadState
from leadrelay.nexudus.classify import Outcome
from leadrelay.nexudus.client import NexudusClient
from leadrelay.nexudus.enums import LeadSource
from leadrelay.routing import load_routing
from leadrelay.runtime import SANDBOX_PASSWORD, SANDBOX_USERNAME, Runtime
from leadrelay.settings import get_settings
from leadrelay.worker.imap.intake import Place
from leadrelay.worker.imap.store import record_message
from leadrelay.worker.imap.trust import MailTrust
from leadrelay.worker.queue import unit_of_work

CHANNEL = "canonical"
WAIT_SECONDS = 90
LIST_TRIES = 5
DEMO_MAIL = "hubblehq-viewing-request.eml"  # tests/fixtures/samples/hubblehq/email-viewing-request.eml
DEMO_INBOX = "demo"
# the demo's mail server: the demo mail carries its Authentication-Results (HubbleHq's
# domain passed DMARC), as an inbox with inboxes.<name>.trusted_authserv_ids believes them
DEMO_TRUST = MailTrust(DEMO_INBOX, authserv_ids=("mx.foundry-workspace.example",))
ADMIN_NAME = "demo"

DEMO_LEAD: dict[str, Any] = {
    "external_id": "zap-000193",
    "kind": "enquiry",
    "contact": {
        "full_name": "Mei Chen",
        "email": "mei.chen@example.com",
        "phone": "+44 7700 900456",
        "company": "Chen Robotics",
    },
    "requirements": {
        "desks": {"min": 8, "max": 10},
        "workspace_type": "private_office",
        "budget": {"amount": 5200, "currency": "GBP", "period": "month"},
        "start_date": "2027-03-01",
        "term_months": 12,
    },
    "listing": {"id": "foundry", "name": "The Foundry, Old Street"},
    "broker": {"name": "Acme Office Search", "contact": "Jo Baker", "email": "jo@acme-offices.example"},
    "message": "Came via our website form.",
    "utm": {"source": "newsletter", "medium": "email", "campaign": "winter-2026"},
}

REJECTED_LEAD: dict[str, Any] = {
    "external_id": "zap-000194",
    "kind": "enquiry",
    "contact": {"full_name": "Phone-only Caller", "phone": "+44 20 7946 0000"},
    "listing": {"id": "foundry"},
    "message": "Rang the front desk; no e-mail given.",
}


@dataclass
class _Processes:
    workdir: Path
    env: dict[str, str]
    running: list[Child] = field(default_factory=list)

    def start(self, name: str, *args: str) -> Child:
        child = Child(name, list(args), env=self.env, logdir=self.workdir)
        self.running.append(child)
        return child

    def run(self, name: str, *args: str) -> None:
        run_cli(name, list(args), env=self.env, logdir=self.workdir)

    def stop(self, timeout: float = 15) -> None:
        """All at once: each is asked to stop, then each gets what is left of ``timeout``."""
        for child in self.running:
            child.terminate()
        deadline = time.monotonic() + timeout
        for child in reversed(self.running):
            child.stop(timeout=max(0.1, deadline - time.monotonic()))

    def dead(self) -> Child | None:
        return next((child for child in self.running if not child.alive), None)


def _signed_post(base: str, secret: str, body: dict[str, Any]) -> httpx.Response:
    raw = json.dumps(body).encode()
    delivery_id = f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time())
    headers = {
        "content-type": "application/json",
        "webhook-id": delivery_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign_standard(secret, delivery_id, timestamp, raw),
    }
    return httpx.post(f"{base}/webhooks/{CHANNEL}", content=raw, headers=headers, timeout=10)


def _join_the_stack(env: dict[str, str]) -> None:
    """This process records the demo's e-mail and reads its ledger: it takes the stack's settings."""
    for name in [n for n in os.environ if n.startswith(("LEADRELAY_", "NEXUDUS_"))]:
        del os.environ[name]
    os.environ.update(env)
    get_settings.cache_clear()


def run_demo(console: Console, *, keep: bool = False) -> int:
    routing = load_routing(None)
    secret = routing.channels[CHANNEL].webhook.secret.get_secret_value()  # type: ignore[union-attr]
    workdir = Path(tempfile.mkdtemp(prefix="leadrelay-demo-"))
    sandbox_port, receiver_port = free_port(), free_port()
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    receiver_url = f"http://127.0.0.1:{receiver_port}"
    admin_token = secrets.token_urlsafe(18)
    stack = {
        "LEADRELAY_DATA_DIR": str(workdir),
        "LEADRELAY_SWEEP_INTERVAL_SECONDS": "1",
        "LEADRELAY_ADMIN_TOKEN": admin_token,
        "NEXUDUS_BASE_URL": sandbox_url,
        "NEXUDUS_USERNAME": SANDBOX_USERNAME,
        "NEXUDUS_PASSWORD": SANDBOX_PASSWORD,
    }
    _join_the_stack(stack)
    procs = _Processes(workdir, dict(os.environ))
    console.rule("[bold]leadrelay demo")
    console.print(f"Working directory: {workdir} (SQLite ledger, SQLite broker transport)")
    console.print(
        f"Nexudus: no credentials are used — a local sandbox that follows the documented API "
        f"stands in at {sandbox_url}"
    )
    code = 1
    try:
        with console.status("Starting the Nexudus sandbox, the receiver and a worker…"):
            sandbox = procs.start("sandbox", "sandbox", "--port", str(sandbox_port))
            procs.run("migrate", "migrate")
            receiver = procs.start("receiver", "serve", "--port", str(receiver_port))
            procs.start("worker", "worker", "--concurrency", "2")
            wait_http(f"{sandbox_url}/_sandbox/state", sandbox)
            wait_http(f"{receiver_url}/healthz", receiver)
        sent = _send(console, receiver_url, secret)
        sent.append(_send_mail(console))
        with console.status("Waiting for the worker to settle every lead…"):
            leads = _settle(workdir, sent)
        opportunities = _opportunities(sandbox_url)
        code = _report(console, leads, opportunities)
        if code == 0 and keep:
            code = _stay_up(console, procs, f"{receiver_url}/admin", admin_token)
    except (RuntimeError, subprocess.CalledProcessError, httpx.HTTPError) as err:
        console.print(f"[bold red]demo failed:[/] {err}")
    except KeyboardInterrupt:
        console.print("Interrupted: stopping the receiver, the worker and the sandbox…")
        code = 130
    finally:
        procs.stop()
        if code == 0:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            console.print(f"Process logs are kept in {workdir}.")
    return code


def _stay_up(console: Console, procs: _Processes, admin_url: str, token: str) -> int:
    """Leave the stack running for exploring, until Ctrl-C; 1 when a process died meanwhile."""
    console.print(
        f"\n[bold]The stack stays up.[/] Admin page: {admin_url}\n"
        f"Log in with the admin token {token} and any name (e.g. {ADMIN_NAME}).\n"
        f"Press Ctrl-C to stop the receiver, the worker and the sandbox.",
        highlight=False,
        soft_wrap=True,
    )
    _open_browser(f"{admin_url}/login")
    # Ctrl-C or a plain kill both stop the stack cleanly, even where the shell that
    # started us left SIGINT ignored (a background job of a script inherits SIG_IGN)
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while (dead := procs.dead()) is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        console.print("Stopping the receiver, the worker and the sandbox…")
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    console.print(f"[bold red]{dead.name} exited[/] (code {dead.popen.returncode}):\n{escape(dead.tail())}")
    return 1


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _open_browser(url: str) -> None:
    """Where there is a desktop: a console browser (lynx on a server) would take the terminal."""
    graphical = sys.platform in ("darwin", "win32") or any(
        os.environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER")
    )
    if graphical:
        with contextlib.suppress(Exception):  # the URL is printed: a browser is a convenience
            webbrowser.open(url)


def _send(console: Console, receiver_url: str, secret: str) -> list[int]:
    table = Table(title="Webhooks sent to POST /webhooks/canonical", title_justify="left")
    for column in ("what", "HTTP", "answer"):
        table.add_column(column)
    ids = []
    for label, body in (
        ("a new lead (Mei Chen, zap-000193)", DEMO_LEAD),
        ("the same lead again, new webhook-id", DEMO_LEAD),
        ("a phone-only lead (zap-000194)", REJECTED_LEAD),
    ):
        response = _signed_post(receiver_url, secret, body)
        if response.status_code != 202:
            raise RuntimeError(f"receiver answered {response.status_code}: {response.text}")
        ids.append(int(response.json()["event_id"]))
        table.add_row(label, str(response.status_code), escape(response.text))
    console.print(table)
    return ids


def _send_mail(console: Console) -> int:
    """A portal's notification e-mail, stored as the inbox poller stores a fetched message and sorted."""
    raw = resources.files("leadrelay").joinpath("demo_data", DEMO_MAIL).read_bytes()
    rt = Runtime.load()
    try:
        with unit_of_work(rt) as uow:
            recorded = record_message(
                uow.session,
                raw,
                place=Place(DEMO_INBOX, "INBOX", 1, 1),
                routing=rt.routing,
                default=None,
                trust=DEMO_TRUST,
            )
            if recorded.queued:
                uow.enqueue(recorded.lead_id)
    finally:
        rt.close()
    if recorded.queued and not uow.published:
        raise RuntimeError("the broker did not take the e-mail's lead")
    table = Table(title="E-mail recorded as if fetched from an IMAP inbox", title_justify="left")
    for column in ("what", "channel (from the sender)", "lead"):
        table.add_column(column)
    table.add_row(
        "a HubbleHq viewing request (Amara Okafor, enq_8F2KQ7XW)",
        str(recorded.channel),
        str(recorded.lead_id),
    )
    console.print(table)
    return recorded.lead_id


def _settle(workdir: Path, lead_ids: list[int]) -> list[tuple[Lead, DeadLetter | None]]:
    engine = make_engine(f"sqlite:///{workdir / 'leadrelay.sqlite'}")
    sessions = make_session_factory(engine)
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            with sessions() as session:
                rows = list(
                    session.execute(select(Lead).where(Lead.id.in_(lead_ids)).order_by(Lead.id)).scalars()
                )
                letters = {
                    d.lead_id: d
                    for d in session.execute(
                        select(DeadLetter).where(DeadLetter.lead_id.in_(lead_ids))
                    ).scalars()
                }
            if len(rows) == len(lead_ids) and all(LeadState(r.state) in TERMINAL_STATES for r in rows):
                return [(row, letters.get(row.id)) for row in rows]
            if time.monotonic() > deadline:
                states = ", ".join(f"#{r.id} {r.state}" for r in rows)
                raise RuntimeError(f"leads did not settle within {WAIT_SECONDS}s ({states})")
            time.sleep(0.3)
    finally:
        engine.dispose()


def _opportunities(sandbox_url: str) -> list[dict[str, Any]]:
    client = NexudusClient(
        account="demo", base_url=sandbox_url, username=SANDBOX_USERNAME, password=SecretStr(SANDBOX_PASSWORD)
    )
    try:
        for _ in range(LIST_TRIES):
            result = client.call("GET", "/api/crm/crmopportunities", params={"page": 1, "size": 100})
            if result.outcome is not Outcome.throttle:
                break
            # the sandbox enforces Nexudus's limits, and the worker may have just used the budget
            time.sleep(result.retry_after or 1.0)
    finally:
        client.close()
    if not result.ok:
        raise RuntimeError(f"could not list opportunities: {result.message}")
    return list(result.value.get("Records", []))


def _report(
    console: Console,
    leads: list[tuple[Lead, DeadLetter | None]],
    opportunities: list[dict[str, Any]],
) -> int:
    held = Table(title="What Nexudus now holds (GET /api/crm/crmopportunities)", title_justify="left")
    for column in ("Id", "Name", "LeadSource", "AgentId", "CrmBoardColumnId", "CoworkerId", "Value"):
        held.add_column(column)
    for opp in opportunities:
        source = opp.get("LeadSource")
        held.add_row(
            *(
                escape(str(cell))
                for cell in (
                    opp.get("Id"),
                    opp.get("Name"),
                    f"{source} ({LeadSource(source).name})" if source else "-",
                    opp.get("AgentId"),
                    opp.get("CrmBoardColumnId"),
                    opp.get("CoworkerId"),
                    opp.get("Value"),
                )
            )
        )
    console.print(held)

    ledger = Table(title="The ledger", title_justify="left")
    for column in ("lead", "from", "state", "detail"):
        ledger.add_column(column)
    for row, letter in leads:
        if row.state == LeadState.delivered:
            detail = f"opportunity {row.opportunity_id} ({row.opportunity_name})"
        elif row.state == LeadState.duplicate:
            detail = f"duplicate of lead {row.duplicate_of}: recorded, not delivered again"
        elif letter is not None:
            errors = json.dumps(letter.detail.get("errors"))
            detail = f"dead letter #{letter.id} [{letter.reason}] {letter.message}\nNexudus Errors: {errors}"
        else:
            detail = row.last_error or ""
        ledger.add_row(str(row.id), f"{row.channel} {row.source}", row.state, escape(detail))
    console.print(ledger)

    states = [row.state for row, _ in leads]
    held_by = {(opp.get("LeadSource"), opp.get("AgentId")) for opp in opportunities}
    # the lead and its repeat race through two worker threads: either may be the one delivered
    good = (
        set(states[:2]) == {LeadState.delivered, LeadState.duplicate}
        and states[2:] == [LeadState.dead, LeadState.delivered]
        and len(opportunities) == 2
        and held_by == {(int(LeadSource.Broker), 3004), (int(LeadSource.HubbleHq), 3001)}
    )
    if good:
        console.print(
            "[bold green]✓[/] one opportunity per enquiry, LeadSource and AgentId from the routing — "
            "the webhook's and the e-mail's; the repeat recognised as a duplicate; the rejected lead "
            "waiting as a dead letter.\n"
            "README.md shows how to connect your own portals and run it for real."
        )
        return 0
    console.print(f"[bold red]✗ unexpected outcome[/]: states {states}, {len(opportunities)} opportunities")
    return 1
