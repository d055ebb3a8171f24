"""Killed pollers, dropped connections, reset folders, one mail in two mailboxes:
nothing lost, nothing imported twice."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from unittest.mock import patch

import pytest
from sqlalchemy.exc import OperationalError

from leadrelay.db import transaction
from leadrelay.runtime import Runtime
from leadrelay.testing.dovecot import Dovecot
from leadrelay.testing.mails import Enquiry, enquiries, sample, templates, vary
from leadrelay.testing.processes import service_env
from leadrelay.worker.imap import poll as poll_module
from leadrelay.worker.imap import state
from leadrelay.worker.imap.keys import message_id_key
from leadrelay.worker.imap.poll import RetryPolicy, poll_inbox
from tests.conftest import REPO
from tests.inbox.proxy import CuttingProxy
from tests.inbox.support import (
    inbox,
    let_lease_expire,
    mail_leads,
    poll,
    routing_file,
    watermark,
)


def start_poller(routing: Path, *flags: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.inbox.poller", "leads", *flags],
        cwd=REPO,
        env=service_env(LEADRELAY_CONFIG=str(routing)),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def assert_marked_only_what_the_ledger_holds(rt: Runtime, dovecot: Dovecot, folder: str) -> None:
    keys = {row.intake_key for row in mail_leads(rt)}
    assert {message_id_key(mid) for mid in dovecot.message_ids(folder, seen=True)} <= keys


@dataclass
class Victim:
    """A folder of distinct enquiries, polled here and by poller processes the test kills."""

    mails: list[Enquiry]
    folder: str
    rt: Runtime
    routing: Path  # the routing file the poller processes read

    def all_recorded_once(self) -> bool:
        return sorted(row.intake_key for row in mail_leads(self.rt)) == sorted(
            m.intake_key for m in self.mails
        )


@pytest.fixture
def victim(dovecot: Dovecot, folders, make_runtime, tmp_path: Path) -> Callable[..., Victim]:
    def make(count: int, *, batch_size: int) -> Victim:
        mails = enquiries(count)
        folder = folders(*(mail.raw for mail in mails))
        config = inbox(dovecot, folder, batch_size=batch_size)
        return Victim(
            mails, folder, make_runtime({"leads": config}), routing_file(tmp_path, {"leads": config})
        )

    return make


def test_a_poller_killed_between_commit_and_mark_loses_and_repeats_nothing(dovecot: Dovecot, victim) -> None:
    target = victim(12, batch_size=4)
    rt, folder = target.rt, target.folder

    crashed = start_poller(target.routing, "--crash-before-mark")
    assert crashed.wait(timeout=60) == -9

    # the first batch is in the ledger, nothing is marked, the watermark did not move
    assert len(mail_leads(rt)) == 4
    assert dovecot.message_ids(folder, seen=True) == set()
    assert watermark(rt).last_uid == 0

    let_lease_expire(rt)
    report = poll(rt)
    assert (report.new, report.duplicate, report.marked) == (8, 4, 12)
    assert target.all_recorded_once()
    assert dovecot.message_ids(folder, seen=False) == set()
    assert watermark(rt).last_uid == 12


def test_killing_the_poller_at_random_points_never_loses_or_repeats_a_lead(dovecot: Dovecot, victim) -> None:
    target = victim(200, batch_size=2)  # a pass long enough (~100 batches) to be killed in its middle
    rt, folder = target.rt, target.folder
    rng = random.Random(20261128)
    recorded_after_kill = []
    for _ in range(4):
        proc = start_poller(target.routing)
        time.sleep(rng.uniform(0.0, 0.4))
        proc.kill()
        if proc.wait(timeout=60) == 0:
            break
        recorded_after_kill.append(len(mail_leads(rt)))
        assert_marked_only_what_the_ledger_holds(rt, dovecot, folder)
        let_lease_expire(rt)

    assert any(0 < n < len(target.mails) for n in recorded_after_kill), recorded_after_kill  # mid-pass
    final = poll(rt)
    assert final.ok, final.error
    assert target.all_recorded_once()
    assert dovecot.message_ids(folder, seen=False) == set()
    assert poll(rt).marked == 0


def test_a_connection_dropped_mid_fetch_is_retried_and_nothing_is_lost(
    dovecot: Dovecot, folders, make_runtime
) -> None:
    folder = folders(*(mail.raw for mail in enquiries(20)))
    # connection 1 dies inside the first FETCH, 2 a few batches in, 3 before it even logs in
    with CuttingProxy(dovecot.imap_port, cuts=[3_000, 9_000, 200]) as proxy:
        rt = make_runtime({"leads": inbox(dovecot, folder, port=proxy.port, batch_size=5)})
        report = poll(rt)
    assert report.ok, report.error
    assert proxy.cut == 3 and report.retries == 3
    assert (report.new, report.marked) == (20, 20)
    assert len(mail_leads(rt)) == 20
    assert dovecot.message_ids(folder, seen=False) == set()


def test_a_pass_that_fails_after_some_batches_keeps_its_watermark_past_them(
    dovecot: Dovecot, folders, make_runtime
) -> None:
    folder = folders(*(mail.raw for mail in enquiries(20)))
    # connection 1 dies a few batches in; every reconnect dies before it logs in, until the pass gives up
    with CuttingProxy(dovecot.imap_port, cuts=[20_000, 200, 200, 200]) as proxy:
        rt = make_runtime({"leads": inbox(dovecot, folder, port=proxy.port, batch_size=5)})
        report = poll_inbox(rt, "leads", enqueue=len, retry=RetryPolicy(attempts=2, first_delay=0.01))
    assert report.error is not None and 5 <= report.marked < 20
    # each batch's watermark is written with the next batch's commit: the last one, when the pass ends
    assert watermark(rt).last_uid == report.marked
    assert len(mail_leads(rt)) >= report.marked


def test_a_ledger_error_in_a_batch_keeps_the_watermark_of_the_batches_before(
    dovecot: Dovecot, folders, make_runtime
) -> None:
    folder = folders(*(mail.raw for mail in enquiries(15)))
    rt = make_runtime({"leads": inbox(dovecot, folder, batch_size=5)})
    calls = {"n": 0}
    real = poll_module.store_messages

    def failing_second(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 2:  # the transaction that also carries the first batch's watermark
            raise OperationalError("INSERT INTO leads …", {}, Exception("the ledger went away"))
        return real(*args, **kwargs)

    with patch.object(poll_module, "store_messages", failing_second), pytest.raises(OperationalError):
        poll_inbox(rt, "leads", enqueue=len, retry=RetryPolicy(attempts=1, first_delay=0.01))
    assert watermark(rt).last_uid == 5  # the first batch: committed, marked, and its watermark kept
    assert len(dovecot.message_ids(folder, seen=True)) == 5
    report = poll_inbox(rt, "leads", enqueue=len)  # the next pass takes the rest
    assert (report.new, report.marked) == (10, 10)
    assert watermark(rt).last_uid == 15


def test_a_uidvalidity_reset_reimports_nothing_and_skips_nothing(
    dovecot: Dovecot, folders, make_runtime
) -> None:
    folder = folders(*(mail.raw for mail in enquiries(6)))
    rt = make_runtime({"leads": inbox(dovecot, folder)})
    assert poll(rt).new == 6
    before = watermark(rt)
    assert (before.last_uid, before.uidvalidity is not None) == (6, True)

    [late] = enquiries(1, first=6)
    with dovecot.client() as client:
        client.expunge(folder, [1, 2, 3])  # someone tidies up, then the folder is rebuilt:
        client.reset_uidvalidity(folder)  # the 3 left become UIDs 1-3
        client.append(folder, late.raw)  # UID 4 — below the old watermark of 6
        new_validity = client.uidvalidity(folder)

    report = poll(rt)
    assert report.rescanned
    assert (report.new, report.duplicate, report.marked) == (1, 3, 4)
    assert len(mail_leads(rt)) == 7
    after = watermark(rt)
    assert (after.uidvalidity, after.last_uid) == (new_validity, 4)


def two_inboxes(dovecot: Dovecot, leads_folder: str, team_folder: str) -> dict[str, dict]:
    return {"leads": inbox(dovecot, leads_folder), "team": inbox(dovecot, team_folder, user="team")}


def test_the_same_notification_in_two_mailboxes_is_one_lead(dovecot: Dovecot, folders, make_runtime) -> None:
    shared, only_team = enquiries(2)
    leads_folder, team_folder = folders(shared.raw), folders(shared.raw, only_team.raw, user="team")
    rt = make_runtime(two_inboxes(dovecot, leads_folder, team_folder))

    first, second = poll(rt, "leads"), poll(rt, "team")

    assert (first.new, first.duplicate) == (1, 0)
    assert (second.new, second.duplicate, second.marked) == (1, 1, 2)
    assert [row.raw_meta["inbox"] for row in mail_leads(rt)] == ["leads", "team"]
    assert dovecot.message_ids(team_folder, seen=False, user="team") == set()


def test_mail_without_a_message_id_is_recognised_by_its_content(
    dovecot: Dovecot, folders, make_runtime
) -> None:
    bounce = next(t for t in templates() if t.path.name == "notalead-bounce.eml").raw()
    assert b"Message-ID" not in bounce
    traced = b"Delivered-To: team@foundry.example\r\n" + bounce  # what delivery to another mailbox adds
    rt = make_runtime(two_inboxes(dovecot, folders(bounce, bounce), folders(traced, user="team")))
    assert (poll(rt, "leads").duplicate, poll(rt, "team").duplicate) == (1, 1)
    [row] = mail_leads(rt)
    assert row.intake_key.startswith("mail-sha256:")


def test_a_reused_message_id_does_not_swallow_a_different_mail(
    dovecot: Dovecot, folders, make_runtime
) -> None:
    """Some mailers send every message with the same Message-ID: only a true copy is a duplicate."""
    one, other = (mail.raw for mail in enquiries(2))
    same_id = "<always-the-same@broken-mailer.example>"
    copy = vary(one, {}, message_id=same_id)
    folder = folders(copy, vary(other, {}, message_id=same_id), copy)
    rt = make_runtime({"leads": inbox(dovecot, folder)})
    report = poll(rt)
    assert (report.new, report.duplicate) == (2, 1)
    assert len(mail_leads(rt)) == 2


def test_one_poller_per_inbox_at_a_time(dovecot: Dovecot, folders, make_runtime) -> None:
    folder = folders(*(mail.raw for mail in enquiries(10)))
    rt = make_runtime({"leads": inbox(dovecot, folder, batch_size=1)})
    with transaction(rt.sessions) as session:
        assert state.acquire(session, "leads", source="elsewhere", owner="other-poller", lease_seconds=60)

    busy = poll(rt)
    assert busy.busy and "another poller" in (busy.error or "")
    assert mail_leads(rt) == []

    let_lease_expire(rt)
    reports = []
    threads = [threading.Thread(target=lambda: reports.append(poll(rt))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(report.new for report in reports) == 10
    assert sum(report.duplicate for report in reports) == 0
    assert len(mail_leads(rt)) == 10


def test_a_re_pointed_inbox_is_scanned_from_the_start(dovecot: Dovecot, folders, make_runtime) -> None:
    old = folders(*(mail.raw for mail in enquiries(3)))
    new = folders(sample("kontor", "email-lead.eml"))
    assert poll(make_runtime({"leads": inbox(dovecot, old)})).new == 3
    rt = make_runtime({"leads": inbox(dovecot, new)})
    assert poll(rt).new == 1
    assert watermark(rt).last_uid == 1
