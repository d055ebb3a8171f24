"""6. Inbox: messages per second imported from a real Dovecot mailbox of 1,000 messages.

Dovecot runs from the inbox tests' throwaway config (leadrelay/testing/dovecot.py) on
loopback; the mailbox holds distinct portal notifications made from the fixtures
(leadrelay/testing/mails.py). Baseline: the same server, the same batch size, fetching
the same messages with ``BODY.PEEK[]`` and doing nothing with them — the rate the
IMAP server and the client library allow. Then one ``poll_inbox`` pass imports them:
fetch, parse the keys, commit to the ledger, flag ``\\Seen``; enqueueing is counted
but not sent (the broker is measured in section 2).
"""

from __future__ import annotations

import imaplib
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from bench import env
from bench.results import Row, Run
from leadrelay.runtime import Runtime
from leadrelay.testing.dovecot import USERS, Dovecot
from leadrelay.testing.mails import enquiries
from leadrelay.worker.imap.poll import RetryPolicy, poll_inbox
from leadrelay.worker.imap.wire import parse_fetch, uid_set

SECTION = "6. Inbox"
FOLDER = "INBOX"
BATCH = 50


@dataclass(frozen=True)
class Sizes:
    messages: int = 1000


def _routing(path: Path, dovecot: Dovecot) -> Path:
    data = yaml.safe_load(resources.files("leadrelay").joinpath("default_routing.yaml").read_text())
    data["inboxes"] = {
        "leads": {
            "host": "127.0.0.1",
            "port": dovecot.imap_port,
            "tls": False,
            "username": "leads",
            "password": USERS["leads"],
            "folder": FOLDER,
            "batch_size": BATCH,
            "timeout_seconds": 30,
        }
    }
    path.write_text(yaml.safe_dump(data))
    return path


def _fetch_all(dovecot: Dovecot) -> tuple[int, float]:
    """Every message in batches of BATCH, peeked (nothing marked); (count, seconds)."""
    imap = imaplib.IMAP4("127.0.0.1", dovecot.imap_port, timeout=30)
    imap.login("leads", USERS["leads"])
    started = time.perf_counter()
    imap.select(FOLDER, readonly=True)
    _, data = imap.uid("SEARCH", "ALL")
    uids = [int(u) for u in data[0].split()]
    fetched = 0
    for start in range(0, len(uids), BATCH):
        _, data = imap.uid("FETCH", uid_set(uids[start : start + BATCH]), "(UID BODY.PEEK[])")
        fetched += len(parse_fetch(data))
    seconds = time.perf_counter() - started
    imap.logout()
    return fetched, seconds


def bench_inbox(run: Run, work: Path, sizes: Sizes) -> None:
    print(f"\n== {SECTION}", flush=True)
    url = env.fresh_database("leadrelay_bench")
    dovecot = Dovecot.start(introspection_url="http://127.0.0.1:9/unused")
    try:
        mails = [e.raw for e in enquiries(sizes.messages)]
        dovecot.deliver(FOLDER, *mails)
        fetched, fetch_seconds = _fetch_all(dovecot)
        env.use_env(env.service_env(url, _routing(work / "routing.yaml", dovecot), work))
        runtime = Runtime.load()
        started = time.perf_counter()
        report = poll_inbox(runtime, "leads", enqueue=len, retry=RetryPolicy(attempts=2, first_delay=0.1))
        seconds = time.perf_counter() - started
        runtime.engine.dispose()
    finally:
        dovecot.stop()
    env.drop_database("leadrelay_bench")
    rate = report.new / seconds if seconds else 0.0
    if report.new != sizes.messages or report.error:
        run.notes.append(f"inbox: {report.summary()}")
    run.add(
        Row(
            SECTION,
            f"messages/s imported from Dovecot, {report.new:,} of {sizes.messages:,} new, batches of {BATCH}",
            rate,
            "/s",
            baseline="the same messages fetched (BODY.PEEK[]), nothing done with them",
            baseline_value=fetched / fetch_seconds,
            note=f"{seconds:.1f} s for the pass; {report.marked} flagged \\Seen",
        )
    )
