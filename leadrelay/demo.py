"""``leadrelay demo``: the whole flow on a fresh machine, in real processes.

Starts a Nexudus sandbox, the receiver and a worker on the embedded default
(SQLite ledger, SQLite broker transport) in a throwaway directory, sends three
signed webhooks — a lead, the same lead again, and a lead Nexudus rejects — then
shows what Nexudus holds, the duplicate recognised and the dead letter.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy import select

from leadrelay.children import Child, run_cli, wait_http
from leadrelay.db import make_engine, make_session_factory
from leadrelay.intake.signatures import sign_standard
from leadrelay.models import TERMINAL_STATES, DeadLetter, Lead, LeadState
from leadrelay.nexudus.classify import Outcome
from leadrelay.nexudus.client import NexudusClient
from leadrelay.nexudus.enums import LeadSource
from leadrelay.routing import load_routing
from leadrelay.runtime import SANDBOX_PASSWORD, SANDBOX_USERNAME

CHANNEL = "canonical"
WAIT_SECONDS = 90
LIST_TRIES = 5

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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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

    def stop(self) -> None:
        for child in reversed(self.running):
            child.stop()


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


@contextlib.contextmanager
def _workspace(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="leadrelay-demo-"))
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


def run_demo(console: Console, *, keep: bool = False) -> int:
    routing = load_routing(None)
    secret = routing.channels[CHANNEL].webhook.secret.get_secret_value()  # type: ignore[union-attr]
    with _workspace(keep) as workdir:
        sandbox_port, receiver_port = _free_port(), _free_port()
        sandbox_url = f"http://127.0.0.1:{sandbox_port}"
        receiver_url = f"http://127.0.0.1:{receiver_port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LEADRELAY_", "NEXUDUS_"))} | {
            "LEADRELAY_DATA_DIR": str(workdir),
            "LEADRELAY_SWEEP_INTERVAL_SECONDS": "1",
            "NEXUDUS_BASE_URL": sandbox_url,
            "NEXUDUS_USERNAME": SANDBOX_USERNAME,
            "NEXUDUS_PASSWORD": SANDBOX_PASSWORD,
        }
        procs = _Processes(workdir, env)
        console.rule("[bold]leadrelay demo")
        console.print(f"Working directory: {workdir} (SQLite ledger, SQLite broker transport)")
        console.print(
            f"Nexudus: no credentials are used — a local sandbox that follows the documented API "
            f"stands in at {sandbox_url}"
        )
        try:
            with console.status("Starting the Nexudus sandbox, the receiver and a worker…"):
                sandbox = procs.start("sandbox", "sandbox", "--port", str(sandbox_port))
                procs.run("migrate", "migrate")
                receiver = procs.start("receiver", "serve", "--port", str(receiver_port))
                procs.start("worker", "worker", "--concurrency", "2")
                wait_http(f"{sandbox_url}/_sandbox/state", sandbox)
                wait_http(f"{receiver_url}/healthz", receiver)
            sent = _send(console, receiver_url, secret)
            with console.status("Waiting for the worker to settle every lead…"):
                leads = _settle(workdir, sent)
            opportunities = _opportunities(sandbox_url)
            return _report(console, leads, opportunities, workdir)
        except (RuntimeError, subprocess.CalledProcessError, httpx.HTTPError) as err:
            console.print(f"[bold red]demo failed:[/] {err}")
            console.print(f"Process logs are in {workdir} (run with --keep to keep them).")
            return 1
        finally:
            procs.stop()


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
    workdir: Path,
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
    for column in ("lead", "state", "detail"):
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
        ledger.add_row(str(row.id), row.state, escape(detail))
    console.print(ledger)

    states = [row.state for row, _ in leads]
    # the lead and its repeat race through two worker threads: either may be the one delivered
    expected_states = {LeadState.delivered, LeadState.duplicate}
    good = (
        set(states[:2]) == expected_states
        and states[2:] == [LeadState.dead]
        and len(opportunities) == 1
        and opportunities[0].get("LeadSource") == int(LeadSource.Broker)
        and opportunities[0].get("AgentId") == 3004
    )
    if good:
        console.print(
            "[bold green]✓[/] one opportunity with LeadSource and AgentId from the routing, "
            "the repeat recognised as a duplicate, the rejected lead waiting as a dead letter.\n"
            "README.md shows how to run the same on Postgres and Redis."
        )
        return 0
    console.print(f"[bold red]✗ unexpected outcome[/]: states {states}, {len(opportunities)} opportunities")
    console.print(f"Process logs are in {workdir} (run with --keep to keep them).")
    return 1
