"""Bulk replay and discard from the admin page and API: previewed, then run as a job in chunks.

Real Postgres and Redis, real HTTP; one test runs the job in a real `leadrelay worker`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from leadrelay.api.app import create_app
from leadrelay.children import Child
from leadrelay.db import transaction
from leadrelay.models import AuditEntry, BulkJob, DeadLetter, DeadLetterStatus, Lead, LeadState
from leadrelay.runtime import Runtime
from leadrelay.testing.processes import sandbox_env
from leadrelay.worker import bulk_jobs
from leadrelay.worker import dead_letters as dlq
from tests.admin.pages import elements, logged_in
from tests.admin.test_admin_api import TOKEN, make_runtime
from tests.conftest import UNTHROTTLED, ThreadedServer, routing_file
from tests.dead_letters.test_replay import settle
from tests.helpers import canonical, ingest, wait_for

API = {"Authorization": f"Bearer {TOKEN}", "X-Leadrelay-Actor": "Sam"}


@pytest.fixture
def admin(clean_db, redis_broker, sandbox) -> Iterator[tuple[str, Runtime]]:
    rt = make_runtime(clean_db, sandbox)
    with ThreadedServer(create_app(rt)) as server:
        yield server.base_url, rt
    rt.close()


def unroutable(url: str, sandbox, n: int) -> list[int]:
    """``n`` leads for a listing no location claims, with no default location: routing dead letters.

    Replayed where the routing has a default location, each is delivered."""
    rt = make_runtime(url, sandbox, defaults={"location": None})
    try:
        leads = [
            ingest(
                rt,
                canonical(
                    external_id=f"bulk-{i}",
                    listing={"id": "annex-2"},
                    contact={"full_name": f"Client {i}", "email": f"c{i}@bulk.example"},
                ),
            )
            for i in range(n)
        ]
        for lead_id in leads:
            assert settle(rt, lead_id) == "dead"
        with rt.sessions() as session:
            return list(session.execute(select(DeadLetter.id).order_by(DeadLetter.id)).scalars())
    finally:
        rt.close()


def counts(rt: Runtime) -> tuple[int, int, int, int]:
    """Open dead letters, leads not dead, audit entries, bulk jobs: what an action would change."""
    with rt.sessions() as session:
        return (
            session.scalar(select(func.count()).where(DeadLetter.status == DeadLetterStatus.open)) or 0,
            session.scalar(select(func.count()).where(Lead.state != LeadState.dead)) or 0,
            session.scalar(select(func.count()).select_from(AuditEntry)) or 0,
            session.scalar(select(func.count()).select_from(BulkJob)) or 0,
        )


def drain(rt: Runtime, job_id: int) -> None:
    """Run the job to its end as the worker's task does, chunk by chunk (the leads are queued, not sent)."""
    while bulk_jobs.run_chunk(rt, job_id, publish=lambda ids: len(ids), limit=7):
        pass


def test_the_preview_says_what_would_happen_and_changes_nothing(admin, clean_db, sandbox) -> None:
    base, rt = admin
    letters = unroutable(clean_db, sandbox, 4)
    with transaction(rt.sessions) as session:
        dlq.discard(session, letters[0], actor="test", why="spam")
    before = counts(rt)

    client, csrf = logged_in(base)
    listing = client.get("/admin/dead-letters").text
    assert all(f'name="ids" value="{i}" form="bulk"' in listing for i in letters[1:])
    chosen = [*letters, 999_999]
    page = client.post(
        "/admin/bulk/preview", data={"csrf": csrf, "action": "replay", "ids": [str(i) for i in chosen]}
    )
    assert page.status_code == 200
    shown = elements(page.text)
    assert "Of the 5 dead letters selected, 3 would be replayed and 2 skipped" in shown.text["bulk-summary"]
    assert "routing" in shown.text["bulk-reasons"] and "3" in shown.text["bulk-reasons"]
    assert "already discarded (spam)" in shown.text["bulk-skipped"]
    assert "no dead letter 999999" in shown.text["bulk-skipped"]
    assert shown.text["bulk-go"].strip() == "Replay 3 dead letters"

    dry = httpx.post(
        f"{base}/admin/api/bulk-jobs",
        json={"action": "discard", "letter_ids": chosen, "why": "x", "dry_run": True},
        headers=API,
    )
    assert dry.status_code == 200
    assert (dry.json()["selected"], dry.json()["would"], dry.json()["by_reason"]) == (5, 3, {"routing": 3})
    assert {s["letter_id"] for s in dry.json()["skipped"]} == {letters[0], 999_999}
    everything = httpx.post(
        f"{base}/admin/api/bulk-jobs", json={"action": "replay", "dry_run": True}, headers=API
    )
    assert everything.json()["would"] == 3  # the filter (none): every open one
    assert counts(rt) == before  # nothing replayed, nothing audited, no job made
    assert sandbox.opportunities() == []


def test_a_discard_needs_a_reason_then_each_is_audited_under_the_acting_user(
    admin, clean_db, sandbox
) -> None:
    base, rt = admin
    letters = unroutable(clean_db, sandbox, 3)
    client, csrf = logged_in(base)
    page = client.post(
        "/admin/bulk/preview",
        data={"csrf": csrf, "action": "discard", "all_matching": "1", "reason": "routing"},
    )
    assert page.status_code == 422
    field = elements(page.text).by_id["bulk-why"]
    assert field["aria-invalid"] == "true" and field["aria-describedby"] == "bulk-why-error"
    refused = client.post(
        "/admin/bulk-jobs", data={"csrf": csrf, "action": "discard", "ids": ",".join(map(str, letters))}
    )
    assert "say why" in httpx.URL(refused.headers["location"]).params["notice"]
    assert counts(rt)[3] == 0

    started = client.post(
        "/admin/bulk-jobs",
        data={"csrf": csrf, "action": "discard", "ids": ",".join(map(str, letters)), "why": "test leads"},
    )
    assert started.status_code == 303
    job_id = int(re.fullmatch(r"/admin/bulk-jobs/(\d+)\?notice=.*", started.headers["location"]).group(1))
    running = client.get(f"/admin/bulk-jobs/{job_id}")
    assert running.headers["refresh"] == "2" and "<script" not in running.text  # reloads, script-free
    drain(rt, job_id)
    finished = client.get(f"/admin/bulk-jobs/{job_id}").text
    assert 'http-equiv="refresh"' not in finished
    assert elements(finished).text["job-done"] == "3" and elements(finished).text["job-status"] == "done"
    with rt.sessions() as session:
        entries = session.execute(select(AuditEntry.actor, AuditEntry.action, AuditEntry.target)).all()
    assert sorted(entries) == sorted(
        [("web:admin", "bulk_job.discard", f"bulk_job:{job_id}")]
        + [("web:admin", "dead_letter.discard", f"dead_letter:{i}") for i in letters]
    )
    assert counts(rt)[0] == 0


def test_a_job_resumes_where_a_killed_worker_left_it_and_takes_each_item_once(
    admin, clean_db, sandbox, monkeypatch
) -> None:
    base, rt = admin
    letters = unroutable(clean_db, sandbox, 12)
    made = httpx.post(
        f"{base}/admin/api/bulk-jobs", json={"action": "replay", "letter_ids": letters}, headers=API
    )
    assert made.status_code == 202
    job_id = made.json()["id"]
    assert made.headers["location"] == f"/admin/api/bulk-jobs/{job_id}"

    real_replay, calls = dlq.replay, []

    def killed_on_the_fifth(*args, **kwargs):
        calls.append(args[1])
        if len(calls) == 5:
            raise SystemExit("the worker is killed mid-item")  # not an Exception: nothing catches it
        return real_replay(*args, **kwargs)

    monkeypatch.setattr(dlq, "replay", killed_on_the_fifth)
    with pytest.raises(SystemExit):
        bulk_jobs.run_chunk(rt, job_id, publish=lambda ids: len(ids))
    monkeypatch.setattr(dlq, "replay", real_replay)
    status = httpx.get(f"{base}/admin/api/bulk-jobs/{job_id}", headers=API).json()
    assert (status["status"], status["done"], status["total"]) == ("running", 4, 12)
    with rt.sessions() as session:  # the fifth item's transaction was rolled back with the worker
        assert session.get(DeadLetter, letters[4]).status == DeadLetterStatus.open

    # its message died with it: the scheduler sends the job again once it has not moved for a while
    with transaction(rt.sessions) as session:
        session.get(BulkJob, job_id).updated_at -= timedelta(minutes=5)
    sent: list[int] = []
    assert bulk_jobs.resume_stale(rt, send_job=lambda i: sent.append(i) or True) == [job_id]
    assert bulk_jobs.resume_stale(rt, send_job=lambda i: sent.append(i) or True) == []  # not twice at once
    # two workers run it at once (a redelivered message): each item is still taken once
    runs = [threading.Thread(target=drain, args=(rt, job_id)) for _ in range(2)]
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    status = httpx.get(f"{base}/admin/api/bulk-jobs/{job_id}", headers=API).json()
    assert (status["status"], status["done"], status["failed"]) == ("done", 12, 0)
    with rt.sessions() as session:
        replays = (
            session.execute(select(AuditEntry.target).where(AuditEntry.action == "dead_letter.replay"))
            .scalars()
            .all()
        )
        lead_ids = session.execute(select(Lead.id).order_by(Lead.id)).scalars().all()
    assert sorted(replays) == sorted(f"dead_letter:{i}" for i in letters)  # each once
    for lead_id in lead_ids:
        assert settle(rt, lead_id) == "delivered"
    assert len(sandbox.opportunities()) == 12
    assert httpx.get(f"{base}/admin/api/bulk-jobs/999999", headers=API).status_code == 404


def test_a_bulk_replay_of_50_runs_in_a_real_worker_and_delivers_each_once(
    admin, clean_db, sandbox, tmp_path: Path
) -> None:
    base, rt = admin
    letters = unroutable(clean_db, sandbox, 50)
    client, csrf = logged_in(base)
    preview = client.post("/admin/bulk/preview", data={"csrf": csrf, "action": "replay", "all_matching": "1"})
    assert elements(preview.text).text["bulk-go"].strip() == "Replay 50 dead letters"
    ids = elements(preview.text).by_id  # the confirm form carries the selection
    assert re.search(r'name="ids" value="([\d,]+)"', preview.text).group(1) == ",".join(map(str, letters))
    assert "bulk-confirm" in ids
    started = client.post(
        "/admin/bulk-jobs", data={"csrf": csrf, "action": "replay", "ids": ",".join(map(str, letters))}
    )
    job_page = started.headers["location"].split("?")[0]

    env = sandbox_env(tmp_path, sandbox.base_url, routing_file(tmp_path, limits=UNTHROTTLED))
    worker = Child("worker", ["worker", "--concurrency", "2"], env=env, logdir=tmp_path)
    try:
        seen: list[str] = []

        def done() -> bool:
            shown = elements(client.get(job_page).text)
            seen.append(shown.text["job-done"])
            return shown.text["job-status"] == "done"

        wait_for(done, timeout=120, interval=0.5, what="the bulk job to finish")
        wait_for(lambda: len(sandbox.opportunities()) == 50, timeout=120, interval=0.5, what="50 deliveries")
    finally:
        worker.stop()
    names = [o["Name"] for o in sandbox.opportunities()]
    assert len(set(names)) == 50  # each once
    with rt.sessions() as session:
        job = session.execute(select(BulkJob)).scalar_one()
        actors = set(
            session.execute(
                select(AuditEntry.actor).where(AuditEntry.action == "dead_letter.replay")
            ).scalars()
        )
        assert session.scalar(select(func.count()).where(Lead.state == LeadState.delivered)) == 50
    assert (job.done, job.failed, job.total) == (50, 0, 50)
    assert actors == {"web:admin"}
    print(f"\nbulk replay of 50: progress seen {seen}")
