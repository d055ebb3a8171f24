"""The alerting hook against a local HTTP receiver: told once, told again only when it grows, told
when it ends; nothing about the person ever in an alert."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from leadrelay.db import transaction, utcnow
from leadrelay.ledger import search
from leadrelay.nexudus.auth_state import record_auth
from leadrelay.notify import Notice, webhook_sender
from leadrelay.runtime import Runtime
from leadrelay.worker import alerts, dead_letters
from tests.conftest import ThreadedServer
from tests.dead_letters.test_replay import settle
from tests.helpers import canonical, ingest
from tests.operations.support import PERSON, age, runtime_with, swept


@dataclass
class Inbox:
    """A webhook endpoint that keeps what it is sent (and can be told to fail)."""

    url: str = ""
    received: list[dict] = field(default_factory=list)
    failing: bool = False

    def keys(self) -> list[tuple[str, str]]:
        return [(alert["alert"], alert["status"]) for alert in self.received]


@pytest.fixture
def hook() -> Iterator[Inbox]:
    inbox = Inbox()

    async def take(request: Request) -> Response:
        if inbox.failing:
            return Response(status_code=502)
        inbox.received.append(json.loads(await request.body()))
        return Response(status_code=204)

    with ThreadedServer(Starlette(routes=[Route("/alerts", take, methods=["POST"])])) as server:
        inbox.url = f"{server.base_url}/alerts"
        yield inbox


@pytest.fixture
def rt(clean_db, sandbox) -> Iterator[Runtime]:
    runtime = runtime_with(clean_db, sandbox, alert_backlog_seconds=600, alert_repeat_seconds=3600)
    yield runtime
    runtime.close()


def check(rt: Runtime, hook: Inbox, **later: float) -> list[tuple[str, str]]:
    sent = alerts.check(rt, send=webhook_sender(hook.url), now=utcnow() + timedelta(**later))
    return [(notice.key, notice.status) for notice in sent]


def dead_letter(rt: Runtime, ref: str) -> int:
    """A lead Nexudus refuses (no e-mail address): a validation dead letter about PERSON."""
    contact = {k: v for k, v in PERSON.items() if k != "email"}
    lead_id = ingest(rt, canonical(external_id=ref, contact=contact, message="call Zebulon Quist"))
    assert settle(rt, lead_id) == "dead"
    return lead_id


def test_dead_letters_are_told_once_then_again_when_new_ones_come_then_when_cleared(rt, hook) -> None:
    assert check(rt, hook) == []
    dead_letter(rt, "a")
    assert check(rt, hook) == [("dead_letters", "firing")]
    assert check(rt, hook) == []  # still the same dead letter: nothing new to say
    dead_letter(rt, "b")
    assert check(rt, hook) == [("dead_letters", "firing")]
    assert "2 open dead letters (2 validation)" in hook.received[-1]["summary"]

    with transaction(rt.sessions) as session:
        for letter_id in search.open_letter_ids(session, search.Criteria(), limit=100):
            dead_letters.discard(session, letter_id, actor="test", why="checked")
    assert check(rt, hook) == [("dead_letters", "resolved")]
    assert check(rt, hook) == []
    assert hook.keys() == [("dead_letters", "firing")] * 2 + [("dead_letters", "resolved")]


def test_an_alert_carries_no_personal_data_and_points_to_the_runbook(rt, hook) -> None:
    dead_letter(rt, "a")
    check(rt, hook)
    [alert] = hook.received
    text = json.dumps(alert).lower()
    for value in (*PERSON.values(), "zebulon", "quist", "7946"):
        assert value.lower() not in text
    assert alert["runbook"] == "docs/runbook.md#dead-letters"
    assert alert["text"].startswith("[leadrelay] FIRING dead_letters: 1 open dead letters")


def test_a_refused_nexudus_login_and_an_aged_backlog_are_told_and_reminded(rt, hook) -> None:
    record_auth(rt.sessions, "main", ok=False, error="Nexudus refused the login: invalid_grant")
    age(rt, ingest(rt, canonical()), seconds=900)
    assert sorted(check(rt, hook)) == [("backlog", "firing"), ("nexudus_auth:main", "firing")]
    assert check(rt, hook, seconds=60) == []
    assert sorted(check(rt, hook, seconds=3700)) == [
        ("backlog", "reminder"),
        ("nexudus_auth:main", "reminder"),
    ]

    record_auth(rt.sessions, "main", ok=True, error=None)
    assert check(rt, hook, seconds=3800) == [("nexudus_auth:main", "resolved")]
    [refused] = [a for a in hook.received if a["alert"] == "nexudus_auth:main"][:1]
    assert "invalid_grant" in refused["summary"]


def test_a_sweep_that_lags_is_told_and_so_is_its_end(rt, hook) -> None:
    swept(rt, seconds_ago=600)
    assert check(rt, hook) == [("scheduler", "firing")]
    [alert] = hook.received
    assert "no scheduler has swept the ledger for 10 min (alert after 2 min)" in alert["summary"]
    assert alert["runbook"] == "docs/runbook.md#scheduler"
    assert check(rt, hook) == []
    swept(rt)
    assert check(rt, hook) == [("scheduler", "resolved")]


def test_an_alert_the_receiver_did_not_take_is_sent_again_at_the_next_check(rt, hook) -> None:
    dead_letter(rt, "a")
    hook.failing = True
    assert check(rt, hook) == []
    hook.failing = False
    assert check(rt, hook) == [("dead_letters", "firing")]


def test_the_alerts_task_does_nothing_without_a_configured_hook(rt, monkeypatch) -> None:
    from leadrelay.worker import tasks

    monkeypatch.setattr(tasks, "current_runtime", lambda: rt)
    dead_letter(rt, "a")
    assert tasks.check_alerts.run() == 0


def test_the_alerts_task_uses_the_configured_hook(clean_db, sandbox, hook, monkeypatch) -> None:
    from leadrelay.worker import tasks

    rt = runtime_with(clean_db, sandbox, alert_webhook_url=hook.url)
    monkeypatch.setattr(tasks, "current_runtime", lambda: rt)
    try:
        dead_letter(rt, "a")
        assert tasks.check_alerts.run() == 1
    finally:
        rt.close()
    assert hook.keys() == [("dead_letters", "firing")]


def test_a_notice_names_its_runbook_section() -> None:
    notice = Notice("nexudus_auth:main", "firing", "refused", utcnow())
    assert notice.payload()["runbook"] == "docs/runbook.md#nexudus-auth"
