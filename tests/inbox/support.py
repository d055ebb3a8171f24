"""Helpers the inbox tests share: polling with fast retries, reading the ledger back."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select, update

from leadrelay.db import transaction, utcnow
from leadrelay.models import Lead, LeadState, MailboxState
from leadrelay.runtime import Runtime
from leadrelay.testing.dovecot import MX, USERS, Dovecot
from leadrelay.worker import pipeline
from leadrelay.worker.imap.poll import PollReport, RetryPolicy, poll_inbox

# the operator's own domains in the fixtures: their colleagues forward portal mail
OWN_DOMAINS = ["foundry-workspace.example", "spree-space.example", "missionhub.example"]

FAST = RetryPolicy(attempts=3, first_delay=0.05, max_delay=0.2)


class Enqueued(list[int]):
    """Stands in for the broker: remembers what was enqueued, and when."""

    def __call__(self, lead_ids: list[int]) -> int:
        self.extend(lead_ids)
        return len(lead_ids)


def inbox(dovecot: Dovecot, folder: str, *, user: str = "leads", **extra: Any) -> dict[str, Any]:
    """An ``inboxes:`` entry for a Dovecot folder over loopback plain IMAP."""
    return {
        "host": "127.0.0.1",
        "port": dovecot.imap_port,
        "tls": False,
        "username": user,
        "password": USERS[user],
        "folder": folder,
        "timeout_seconds": 5,
        "trusted_authserv_ids": [MX],
        "trusted_forwarders": OWN_DOMAINS,
        **extra,
    }


def routing_file(tmp_path: Path, inboxes: dict[str, Any]) -> Path:
    """The embedded routing plus ``inboxes``, as a file for LEADRELAY_CONFIG."""
    data = yaml.safe_load(resources.files("leadrelay").joinpath("default_routing.yaml").read_text())
    path = tmp_path / "routing.yaml"
    path.write_text(yaml.safe_dump({**data, "inboxes": inboxes}))
    return path


@dataclass
class Polled:
    """One poll pass, then what a worker made of each mail it stored (sorted and read, not delivered).

    ``new``: read as a lead (or as a mail of several leads, recorded beside it);
    ``ignored``: not a lead; ``failed``: a dead letter, at the door (too big) or
    by the worker (unrouted, an unproven sender, unreadable). The rest is the
    poll's own report.
    """

    report: PollReport
    new: int = 0
    ignored: int = 0
    failed: int = 0
    parts: list[int] = field(default_factory=list)  # the leads split from mail of several, not yet read

    def __getattr__(self, name: str) -> Any:
        return getattr(self.report, name)


_READ_AS = {LeadState.ignored: "ignored", LeadState.dead: "failed"}


def read_stored(rt: Runtime, lead_ids: list[int], parts: list[int] | None = None) -> Counter[str]:
    """The worker's first stage for each stored mail, as a running worker does it: what each became.

    ``parts``: where to put the leads split from mail that holds several (the worker
    goes on with them at once; a test does it with ``process_all``).
    """
    became: Counter[str] = Counter()
    for lead_id in lead_ids:
        result = pipeline.read(rt, lead_id, owner="test-worker")
        became["new" if result.parts else _READ_AS.get(result.state, "new")] += 1
        if parts is not None:
            parts.extend(result.parts)
    return became


def poll(
    rt: Runtime, name: str = "leads", *, enqueue: Enqueued | None = None, read: bool = True, **kwargs: Any
) -> Polled:
    """One pass over the inbox; with ``read``, then each stored mail through the worker's first stage."""
    queued = enqueue if enqueue is not None else Enqueued()
    report = poll_inbox(rt, name, enqueue=queued, retry=FAST, **kwargs)
    if not read:
        return Polled(report, new=report.new, failed=report.failed)
    parts: list[int] = []
    counts = read_stored(rt, report.lead_ids, parts)  # the mail stored now: each queued for a worker
    failed = report.failed + counts["failed"]
    return Polled(report, new=counts["new"], ignored=counts["ignored"], failed=failed, parts=parts)


def mail_leads(rt: Runtime) -> list[Lead]:
    with rt.sessions() as session:
        return list(session.execute(select(Lead).where(Lead.source == "email").order_by(Lead.id)).scalars())


def watermark(rt: Runtime, name: str = "leads") -> MailboxState:
    with rt.sessions() as session:
        row = session.get(MailboxState, name)
        assert row is not None
        return row


def let_lease_expire(rt: Runtime, name: str = "leads") -> None:
    """What time does for a poller that died holding the lease."""
    with transaction(rt.sessions) as session:
        session.execute(
            update(MailboxState)
            .where(MailboxState.inbox == name)
            .values(lease_until=utcnow() - timedelta(seconds=1))
        )
