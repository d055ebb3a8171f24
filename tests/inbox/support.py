"""Helpers the inbox tests share: polling with fast retries, reading the ledger back."""

from __future__ import annotations

from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select, update

from leadrelay.db import transaction, utcnow
from leadrelay.models import Lead, MailboxState
from leadrelay.runtime import Runtime
from leadrelay.testing.dovecot import MX, USERS, Dovecot
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


def poll(rt: Runtime, name: str = "leads", *, enqueue: Enqueued | None = None, **kwargs: Any) -> PollReport:
    return poll_inbox(rt, name, enqueue=enqueue if enqueue is not None else Enqueued(), retry=FAST, **kwargs)


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
