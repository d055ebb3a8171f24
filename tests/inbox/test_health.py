"""Issue 14, done when: stopping the IMAP server makes /readyz, the metric and the alert
say so within two poll intervals; restarting it clears them.

A Dovecot of this test's own (the session's is shared) is stopped and started
again on the same port, while the real poll path runs on a fixed interval like
the elected scheduler's ticks.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from leadrelay.api.health import readiness
from leadrelay.ledger_metrics import LedgerCollector
from leadrelay.notify import Notice
from leadrelay.runtime import Runtime
from leadrelay.testing.dovecot import DOVECOT, Dovecot
from leadrelay.testing.mails import enquiries
from leadrelay.worker import alerts
from tests.inbox.conftest import Folders, MakeRuntime
from tests.inbox.oauth_server import AuthServer
from tests.inbox.support import inbox, poll, watermark

INTERVAL = 2.0  # seconds between poll ticks


@pytest.fixture
def own_dovecot(auth_server: AuthServer) -> Iterator[Dovecot]:
    server = Dovecot.start(introspection_url=f"{auth_server.base_url}/introspect")
    yield server
    server.stop()


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def _halt(server: Dovecot) -> None:
    os.kill(int((server.root / "run" / "master.pid").read_text()), signal.SIGTERM)
    deadline = time.monotonic() + 15
    while _listening(server.imap_port):
        assert time.monotonic() < deadline, "Dovecot did not stop"
        time.sleep(0.05)


def _resume(server: Dovecot) -> None:
    subprocess.run(
        [DOVECOT, "-c", str(server.config)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
        timeout=30,
    )
    deadline = time.monotonic() + 15
    while not _listening(server.imap_port):
        assert time.monotonic() < deadline, "Dovecot did not start again"
        time.sleep(0.05)


class Observer:
    """What /readyz, /metrics and the alerting hook say about inbox ``leads``."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.notices: list[Notice] = []

    def readyz(self) -> list[str]:
        report = readiness(self.rt)
        return [p.detail for p in report.problems if p.kind == "inbox"]

    def metric(self, name: str) -> float | None:
        collector = LedgerCollector(self.rt, queue_depths=dict)
        for family in collector.collect():
            for sample in family.samples:
                if sample.name == name and sample.labels.get("inbox") == "leads":
                    return float(sample.value)
        return None

    def alert(self) -> list[str]:
        sent = alerts.check(self.rt, send=self.notices.append)
        return [n.status for n in sent if n.key == "inbox:leads"]

    def look(self) -> dict[str, Any]:
        return {
            "readyz": self.readyz(),
            "up": self.metric("leadrelay_inbox_up"),
            "alert": self.alert(),
            "failures": self.metric("leadrelay_inbox_consecutive_failures"),
        }


def test_a_stopped_imap_server_is_reported_within_two_intervals_and_cleared_on_restart(
    own_dovecot: Dovecot, make_runtime: MakeRuntime
) -> None:
    first, second = enquiries(2)
    with own_dovecot.client() as client:
        client.create("leads")
        client.append("leads", first.raw)
    rt = make_runtime(
        {"leads": inbox(own_dovecot, "leads", poll_interval_seconds=INTERVAL, timeout_seconds=1)}
    )
    watch = Observer(rt)

    assert poll(rt).ok
    seen = watch.look()
    assert seen == {"readyz": [], "up": 1.0, "alert": [], "failures": 0.0}
    assert watermark(rt).imported == 1

    _halt(own_dovecot)
    stopped = time.monotonic()
    tick, reported = 1, None
    while reported is None and tick <= 3:
        time.sleep(max(0.0, stopped + (tick - 1) * INTERVAL - time.monotonic()))
        report = poll(rt)  # the scheduler's tick: the pass fails after its quick retries
        assert not report.ok and report.kind == "network", report.error
        seen = watch.look()
        if seen["readyz"]:
            reported = (time.monotonic() - stopped, tick, seen)
    assert reported is not None, f"still not reported after {tick - 1} failed ticks: {seen}"
    after, ticks, seen = reported
    assert after <= 2 * INTERVAL, f"reported only after {after:.1f}s ({ticks} ticks)"
    assert "refused the connection" in seen["readyz"][0] and "'leads'" in seen["readyz"][0]
    # stale after two failed passes, or sooner when a slow pass already let two intervals go by
    assert seen["up"] == 0.0 and seen["alert"] == ["firing"] and seen["failures"] >= 1
    firing = [n for n in watch.notices if n.key == "inbox:leads"][-1]
    assert "refused the connection" in firing.summary and "runbook" in firing.summary
    assert watch.alert() == []  # told once, not at every check
    state = watermark(rt)
    assert state.error_kind == "network" and state.failing_since is not None

    _resume(own_dovecot)
    with own_dovecot.client() as client:
        client.append("leads", second.raw)
    assert poll(rt).ok  # the next tick
    seen = watch.look()
    assert seen == {"readyz": [], "up": 1.0, "alert": ["resolved"], "failures": 0.0}
    state = watermark(rt)
    assert state.imported == 2 and state.failures == 0 and state.last_error is None
    assert state.failing_since is None and state.uidvalidity is not None


def test_a_wrong_password_is_an_auth_failure_and_a_missing_folder_a_folder_failure(
    dovecot: Dovecot, folders: Folders, make_runtime: MakeRuntime
) -> None:
    folder = folders()
    rt = make_runtime(
        {
            "leads": inbox(dovecot, folder, password="not-the-password"),
            "lost": inbox(dovecot, "no-such-folder"),
        }
    )
    report = poll(rt, "leads")
    assert report.kind == "auth" and "password" in (report.error or "")
    assert "not-the-password" not in (report.error or "")
    assert poll(rt, "lost").kind == "folder"
    assert poll(rt, "lost").kind == "folder"
    watch = Observer(rt)
    problems = [p for p in readiness(rt).problems if p.kind == "inbox"]
    # one failed pass of "leads": failing, not yet stale; two of "lost": stale
    assert [p.detail.split(" ")[1] for p in problems] == ["'lost'"]
    assert "folder" in problems[0].detail
    assert watch.metric("leadrelay_inbox_up") == 1.0
    assert watermark(rt, "lost").failures == 2
