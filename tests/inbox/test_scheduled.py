"""The inbox door with real processes: `leadrelay worker --beat` polls on schedule,
the workers deliver, Postgres + Redis + Dovecot + the Nexudus sandbox."""

from __future__ import annotations

from pathlib import Path

from leadrelay.children import Child
from leadrelay.runtime import SANDBOX_PASSWORD, SANDBOX_USERNAME
from leadrelay.testing.dovecot import Dovecot
from leadrelay.testing.mails import sample
from leadrelay.testing.processes import service_env
from tests.helpers import wait_for
from tests.inbox.support import inbox, routing_file


def test_beat_polls_the_inbox_and_the_workers_deliver_what_arrives(
    dovecot: Dovecot, folders, clean_db: str, redis_broker: str, sandbox, tmp_path: Path
) -> None:
    folder = folders(sample("kontor", "email-lead.eml"))
    routing = routing_file(tmp_path, {"leads": inbox(dovecot, folder, poll_interval_seconds=1)})
    env = service_env(
        LEADRELAY_CONFIG=str(routing),
        LEADRELAY_DATA_DIR=str(tmp_path),
        NEXUDUS_BASE_URL=sandbox.base_url,
        NEXUDUS_USERNAME=SANDBOX_USERNAME,
        NEXUDUS_PASSWORD=SANDBOX_PASSWORD,
    )
    worker = Child("worker", ["worker", "--concurrency", "2", "--beat"], env=env, logdir=tmp_path)
    try:
        wait_for(lambda: len(sandbox.opportunities()) == 1, timeout=60, what="the mail already waiting")
        dovecot.deliver(folder, sample("workthere", "email-enquiry.eml"))
        wait_for(lambda: len(sandbox.opportunities()) == 2, timeout=30, what="the mail that came later")
    finally:
        worker.stop()
    names = {opportunity["Name"] for opportunity in sandbox.opportunities()}
    assert names == {"Kontor ktr_5c9e21", "Workthere WT-2026-004417"}
    assert dovecot.message_ids(folder, seen=False) == set()
