"""Exactly-once effect under faults: every genuine lead in Nexudus once, whatever breaks.

Real processes throughout: a receiver and three prefork workers — and no
``leadrelay beat`` for the whole run: the workers elect the scheduler among
themselves — on the machine's Postgres and Redis (or RabbitMQ), talking over HTTP
to a Nexudus sandbox in its own process that answers 5xx, stalls past the client
timeout, drops connections after committing, makes creates that land after the
client gave up, and throttles in bursts. Meanwhile workers are SIGKILLed and
restarted, one is stalled (SIGSTOP) past its lease and resumed, the broker is
flushed and restarted, and Postgres is restarted, then crashed (an immediate stop:
the commits that did not wait for the disk may be lost). A few hundred leads go in, a
quarter of them delivered twice, and a few portal mails from an unproven sender are
held at the inbox door (``unverified_sender``); an admin replays every dead letter,
over and over — overriding the sender check of the held mails — while partners keep
re-sending the leads that died (a replay storm). Every other round of the storm is a
bulk replay job, run in chunks by the workers that are being killed, stalled and cut off
from their broker, and resumed by the elected scheduler when its message is lost.
A few HubbleHq enquiries are followed
up (an update, a withdrawal), half of them updated before the enquiry itself arrives:
each ends one opportunity holding each follow-up's note once, merges faulted too.
Some enquiries come twice with more
to say the second time (a twin carrying the UTM fields the first lacked): whichever is
read second merges them into the opportunity, once, under the writer lock, while its
PUTs are answered 500 or lost after they landed.
"""

from __future__ import annotations

import itertools
import json
import random
import re
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

from leadrelay.children import Child, wait_http
from leadrelay.intake.signatures import sign_standard
from leadrelay.models import DeadLetter, DeadReason, Lead, LeadState
from leadrelay.routing import load_routing
from leadrelay.testing.mails import enquiries as portal_mails
from leadrelay.testing.partners import sample
from leadrelay.testing.processes import RemoteSandbox, sandbox_env
from leadrelay.worker.imap.intake import Place
from leadrelay.worker.imap.store import record_message
from tests.conftest import RABBIT_URL, REDIS_URL, UNTHROTTLED, free_port, routing_file
from tests.helpers import canonical, unsettled, wait_for

pytestmark = pytest.mark.chaos

UNIQUE = 300
REPEATED = 75  # 25 % of the unique leads are delivered a second time
INVALID = 10  # phone-only: Nexudus must refuse them (and only them)
TWINS = 40  # enquiries sent first without UTM fields, then again (a new webhook-id) with them
HELD = 6  # portal mails held for their sender until the storm's replays let them through
FOLLOWED = 6  # HubbleHq enquiries followed up by an update and a withdrawal (half updated first)
SECRET = "whsec_" + "Y2hhb3MtY2hhb3MtY2hhb3MtY2hhb3M="
ADMIN_TOKEN = "chaos-admin-token-0123456789"
BULK_TOKEN = "chaos-bulk-token-0123456789"  # a second named operator: the bulk jobs' actor
LEASE_SECONDS = 8
STALL_SECONDS = LEASE_SECONDS + 4
PG_VERSION = subprocess.run(["ls", "/etc/postgresql"], capture_output=True, text=True).stdout.split()[0]

FATAL = "Unrecoverable error"  # Celery's last line before a worker exits
KNOWN_CRASH = re.compile(
    r"Unrecoverable error: AttributeError\(.*'NoneType' object has no attribute 'hostname'"
)

FAULTS = [
    {
        "action": "status",
        "method": "POST",
        "path_regex": "crmopportunities$",
        "status": 500,
        "probability": 0.06,
    },
    {
        "action": "status_after_commit",
        "method": "POST",
        "path_regex": "crmopportunities$",
        "probability": 0.05,
    },
    {"action": "drop_after_commit", "method": "POST", "path_regex": "crmopportunities$", "probability": 0.05},
    {
        "action": "delay_after_commit",
        "method": "POST",
        "path_regex": "crmopportunities$",
        "seconds": 2.5,
        "probability": 0.03,
    },
    {
        "action": "throttle",
        "method": "POST",
        "path_regex": "crmopportunities$",
        "seconds": 1,
        "probability": 0.04,
    },
    {  # made 1.5 s after the request, the client gave up at 1 s: it lands later
        "action": "delay",
        "method": "POST",
        "path_regex": "crmopportunities$",
        "seconds": 1.5,
        "probability": 0.03,
    },
    {"action": "drop_after_commit", "method": "PUT", "path_regex": "crmopportunities$", "probability": 0.1},
    {
        "action": "status",
        "method": "PUT",
        "path_regex": "crmopportunities$",
        "status": 500,
        "probability": 0.1,
    },
    {"action": "drop_after_commit", "method": "POST", "path_regex": "coworkers$", "probability": 0.05},
    {"action": "status", "method": "POST", "path_regex": "coworkers$", "status": 503, "probability": 0.04},
    {"action": "drop", "method": "GET", "path_regex": "coworkers$", "probability": 0.03},
    {"action": "delay", "method": "GET", "path_regex": "coworkers$", "seconds": 2.5, "probability": 0.02},
    {
        "action": "status",
        "method": "GET",
        "path_regex": "crmopportunities$",
        "status": 502,
        "probability": 0.05,
    },
    # a follow-up's GET-merge-PUT: the read fails, the PUT's answer is lost, the PUT fails
    {
        "action": "status",
        "method": "GET",
        "path_regex": r"crmopportunities/\d+$",
        "status": 502,
        "probability": 0.05,
    },
    {"action": "drop_after_commit", "method": "PUT", "path_regex": "crmopportunities$", "probability": 0.1},
    {
        "action": "status",
        "method": "PUT",
        "path_regex": "crmopportunities$",
        "status": 500,
        "probability": 0.05,
    },
]


@dataclass
class Broker:
    name: str
    url: str
    flush: Callable[[], None]
    restart: Callable[[], None]


def flush_redis() -> None:
    redis.Redis.from_url(REDIS_URL).flushdb()


def restart_redis() -> None:
    subprocess.run(["redis-cli", "-p", "6379", "shutdown", "nosave"], check=False, capture_output=True)
    time.sleep(0.5)
    subprocess.run(
        [
            "redis-server",
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "-::1",
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            "/var/lib/redis",
            "--logfile",
            "/var/log/redis/ci.log",
        ],
        check=True,
    )
    wait_for(lambda: _redis_up(), timeout=30, what="redis to come back")


def _redis_up() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL).ping())
    except redis.RedisError:
        return False


def purge_rabbit() -> None:
    """Every message lost: the leads' and the control queue's (fan-out messages, polls, bulk jobs)."""
    for queue in ("leadrelay.leads", "leadrelay.control"):
        subprocess.run(["rabbitmqctl", "purge_queue", queue], check=False, capture_output=True)


def restart_rabbit() -> None:
    subprocess.run(["rabbitmqctl", "stop_app"], check=True, capture_output=True)
    subprocess.run(["rabbitmqctl", "start_app"], check=True, capture_output=True)


def restart_postgres(mode: str = "fast") -> None:
    """``immediate``: a crash of Postgres itself (no shutdown checkpoint): the commits that did not
    wait for the disk and were not flushed yet are lost (docs/guarantees.md)."""
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", "-m", mode, PG_VERSION, "main", "restart"],
        check=True,
        capture_output=True,
    )


def crash_postgres() -> None:
    restart_postgres("immediate")


BROKERS = {
    "redis": Broker("redis", REDIS_URL, flush_redis, restart_redis),
    "rabbitmq": Broker("rabbitmq", RABBIT_URL, purge_rabbit, restart_rabbit),
}


@dataclass
class Stack:
    env: dict[str, str]
    logdir: Path
    receiver_url: str
    workers: list[Child] = field(default_factory=list)
    others: list[Child] = field(default_factory=list)
    kills: int = 0
    stalls: int = 0
    crashes: list[str] = field(default_factory=list)  # why each worker that exited by itself did
    lock: threading.Lock = field(default_factory=threading.Lock)  # the chaos and the supervisor

    def start_worker(self, n: int) -> Child:
        return Child(
            f"worker{n}",
            ["worker", "--concurrency", "2", "--pool", "prefork"],
            env=self.env,
            logdir=self.logdir,
        )

    def kill_and_restart_a_worker(self) -> None:
        with self.lock:
            n = random.randrange(len(self.workers))
            self.workers[n].kill()  # SIGKILL to the whole group: main process and pool children
            self.workers[n].popen.wait()
            self.kills += 1
            self.workers[n] = self.start_worker(n)

    def restart_the_exited(self) -> None:
        """What a supervisor does (docker-compose's ``restart: unless-stopped``): a worker that
        exited by itself is started again, and why it exited is kept."""
        with self.lock:
            for n, worker in enumerate(self.workers):
                if worker.alive:
                    continue
                fatal = [line for line in worker.said().splitlines() if FATAL in line]  # this run's
                said = f"exit code {worker.popen.returncode}:\n{worker.tail(60)}"
                self.crashes.append(fatal[-1] if fatal else said)
                worker.stop()  # its pool children too
                self.workers[n] = self.start_worker(n)

    def supervise(self, stop: threading.Event) -> None:
        while not stop.wait(0.5):
            self.restart_the_exited()

    def stall_a_worker(self) -> None:
        """SIGSTOP a worker (its pool children too) past its leases, then let it go on."""
        n = random.randrange(len(self.workers))
        stalled = self.workers[n]
        stalled.kill(signal.SIGSTOP)
        self.stalls += 1
        threading.Timer(STALL_SECONDS, lambda: stalled.kill(signal.SIGCONT)).start()

    def stop(self) -> None:
        for proc in [*self.workers, *self.others]:
            proc.kill(signal.SIGCONT)  # a stalled one must be able to stop
            proc.stop()


@pytest.fixture(params=["redis", "rabbitmq"])
def broker(request: pytest.FixtureRequest) -> Broker:
    chosen = BROKERS[request.param]
    if chosen.name == "redis":
        flush_redis()
    else:
        purge_rabbit()
    return chosen


@pytest.fixture
def stack(clean_db: str, broker: Broker, tmp_path: Path) -> Iterator[tuple[Stack, RemoteSandbox]]:
    sandbox = RemoteSandbox(tmp_path, limits=False)
    for rule in FAULTS:
        sandbox.add_fault(times=None, **rule)
    # half the workers' six slots: claims are refused for want of room, and the refused leads wait in
    # the ledger until a delivery's or a refusal's own dispatch (or the sweeper) hands them out
    routing = routing_file(tmp_path, limits={**UNTHROTTLED, "concurrent_deliveries": 3}, secret=SECRET)
    env = sandbox_env(
        tmp_path,
        sandbox.base_url,
        routing,
        LEADRELAY_BROKER_URL=broker.url,
        LEADRELAY_NEXUDUS_TIMEOUT="1",
        LEADRELAY_WRITE_LANDING_SECONDS="3",
        LEADRELAY_LEASE_SECONDS=str(LEASE_SECONDS),
        LEADRELAY_ADMIN_USERS=f"chaos:operator:{ADMIN_TOKEN},chaos-bulk:operator:{BULK_TOKEN}",
        LEADRELAY_REQUEUE_AFTER_SECONDS="5",
        LEADRELAY_SWEEP_INTERVAL_SECONDS="0.5",
        LEADRELAY_RETRY_SCHEDULE="0,1,1,2,2,3,3,4,4,5,5,5,5,5,5,5,5,5,5,5",
        LEADRELAY_RETRY_JITTER="0.2",
        # a publish of three leads or more puts several in a message (up to 4): killed, stalled and
        # redelivered messages of several leads, and the ledger's restart in the middle of one
        LEADRELAY_PUBLISH_SPREAD="2",
        LEADRELAY_LEADS_PER_MESSAGE="4",
    )
    port = free_port()
    stack = Stack(env=env, logdir=tmp_path, receiver_url=f"http://127.0.0.1:{port}")
    stack.others.append(Child("receiver", ["serve", "--port", str(port)], env=env, logdir=tmp_path))
    # no `leadrelay beat` for the whole run: the workers elect the scheduler among themselves
    stack.workers = [stack.start_worker(n) for n in range(3)]
    supervising = threading.Event()
    supervisor = threading.Thread(target=stack.supervise, args=(supervising,))
    supervisor.start()
    try:
        wait_http(f"{stack.receiver_url}/healthz", stack.others[0])
        yield stack, sandbox
    finally:
        supervising.set()
        supervisor.join()
        stack.stop()
        sandbox.stop()


def deliveries() -> list[tuple[dict, str | None]]:
    """Every webhook to send (body, webhook-id or None for a fresh one), shuffled."""
    leads = [
        canonical(
            external_id=f"chaos-{n:04}", contact={"full_name": f"Client {n}", "email": f"c{n}@chaos.example"}
        )
        for n in range(UNIQUE)
    ]
    for n in range(TWINS):
        leads[n]["utm"] = {}
    twins = [canonical(**{**leads[n], "utm": twin_utm(n)}) for n in range(TWINS)]
    invalid = [
        canonical(
            external_id=f"bad-{n:02}", contact={"full_name": f"Caller {n}", "phone": f"+4420794600{n:02}"}
        )
        for n in range(INVALID)
    ]
    items: list[tuple[dict, str | None]] = [
        (body, f"msg_{uuid.uuid4().hex}") for body in [*leads, *twins, *invalid]
    ]
    for index, (body, delivery_id) in enumerate(random.sample(items[:UNIQUE], REPEATED)):
        items.append((body, delivery_id if index % 2 else None))  # same webhook-id, or a new one
    random.shuffle(items)
    return items


def followed_up() -> list[dict]:
    """HubbleHq enquiries and their follow-ups, in the order the portal sends them."""
    sent: list[dict] = []
    for n in range(FOLLOWED):
        reference = f"enq_chaos{n:02}"
        enquiry = json.loads(sample("hubblehq", "webhook-viewing-request.json").read_text())
        enquiry["enquiry"].update(
            id=reference, client={"full_name": f"Follow {n}", "email": f"f{n}@followed.example"}
        )
        update = {"event": "enquiry.updated", "enquiry": {"id": reference, "requirements": {"desks": 20 + n}}}
        withdrawn = {"event": "enquiry.closed", "enquiry": {"id": reference, "message": "Signed elsewhere."}}
        sent += [update, enquiry, withdrawn] if n % 2 else [enquiry, update, withdrawn]
    return sent


def twin_utm(n: int) -> dict[str, str]:
    return {"source": "twin", "campaign": f"chaos-twin-{n:04}"}


def send(base: str, body: dict, delivery_id: str | None, channel: str = "canonical") -> None:
    """POST like a partner does: retry until the receiver says 202."""
    raw = json.dumps(body).encode()
    delivery_id = delivery_id or f"msg_{uuid.uuid4().hex}"
    deadline = time.monotonic() + 120
    while True:
        ts = int(time.time())
        headers = {
            "content-type": "application/json",
            "webhook-id": delivery_id,
            "webhook-timestamp": str(ts),
            "webhook-signature": sign_standard(SECRET, delivery_id, ts, raw),
        }
        try:
            if (
                httpx.post(f"{base}/webhooks/{channel}", content=raw, headers=headers, timeout=10).status_code
                == 202
            ):
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("the receiver did not accept a delivery within 120 s")
        time.sleep(0.5)


def chaos(stack: Stack, broker: Broker, stop: threading.Event) -> list[str]:
    """Break things on a schedule while the leads flow; returns what was done."""
    plan: list[tuple[float, str, Callable[[], None]]] = [
        (2, "kill a worker", stack.kill_and_restart_a_worker),
        (4, "stall a worker past its lease", stack.stall_a_worker),
        (5, f"flush {broker.name}", broker.flush),
        (8, "kill a worker", stack.kill_and_restart_a_worker),
        (11, "restart postgres", restart_postgres),
        (15, f"restart {broker.name}", broker.restart),
        (19, "kill a worker", stack.kill_and_restart_a_worker),
        (23, "kill a worker", stack.kill_and_restart_a_worker),
        (26, "crash postgres", crash_postgres),
    ]
    done, started = [], time.monotonic()
    for at, what, action in plan:
        if stop.wait(max(0.0, started + at - time.monotonic())):
            break
        action()
        done.append(what)
    return done


ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}  # the audit actor is the token's owner
BULK = {"Authorization": f"Bearer {BULK_TOKEN}"}


def replay_storm(
    stack: Stack, invalid: list[dict], stop: threading.Event, jobs: list[int]
) -> tuple[int, int]:
    """An admin replays every dead letter, again and again, while partners re-send the dead leads.

    Every other round is a bulk replay job of every open dead letter (``jobs`` gets its id), run by
    the workers being killed, stalled and cut off from their broker; the rounds between replay the
    ``validation`` ones at once, as before: only the bulk jobs let the held mails through.
    """
    replays = resends = 0
    for round_ in itertools.count():
        if stop.wait(1.0):
            break
        try:
            if round_ % 2 == 0:
                made = httpx.post(
                    f"{stack.receiver_url}/admin/api/bulk-jobs",
                    json={"action": "replay"},
                    headers=BULK,
                    timeout=30,
                )
                jobs.extend([made.json()["id"]] if made.status_code == 202 else [])
            else:
                answer = httpx.post(
                    f"{stack.receiver_url}/admin/api/dead-letters/replay",
                    json={"reason": "validation"},
                    headers=ADMIN,
                    timeout=30,
                )
                if answer.status_code == 200:
                    replays += sum(r["outcome"] == "queued" for r in answer.json()["results"])
        except httpx.HTTPError:
            pass  # the receiver is busy or Postgres is restarting: next round
        for body in random.sample(invalid, 3):
            send(stack.receiver_url, body, None)
            resends += 1
    return replays, resends


def bulk_jobs_done(stack: Stack, jobs: list[int]) -> list[dict]:
    """Each bulk job's last status, once every one is done (resumed after kills and broker flushes)."""
    found: dict[int, dict] = {}

    def all_done() -> bool:
        for job in jobs:
            if found.get(job, {}).get("status") != "done":
                try:
                    answer = httpx.get(
                        f"{stack.receiver_url}/admin/api/bulk-jobs/{job}", headers=ADMIN, timeout=10
                    )
                except httpx.HTTPError:
                    return False
                found[job] = answer.json() if answer.status_code == 200 else {}
        return all(found[job].get("status") == "done" for job in jobs)

    wait_for(all_done, timeout=180, interval=1, what="every bulk replay job to finish")
    return [found[job] for job in jobs]


def hold_portal_mails(clean_db: str, routing_path: Path) -> None:
    """Portal mails as the inbox poller records them, from senders no trusted server vouched for."""
    routing = load_routing(routing_path)
    engine = create_engine(clean_db)
    with Session(engine) as session, session.begin():
        for n, mail in enumerate(portal_mails(HELD, first=7000)):
            place = Place("chaos", "INBOX", 1, n + 1)
            recorded = record_message(session, mail.raw, place=place, routing=routing, default=None)
            assert recorded.reason == DeadReason.unverified_sender, recorded
    engine.dispose()


def test_every_genuine_lead_reaches_nexudus_exactly_once(stack, broker: Broker, clean_db: str) -> None:
    stack_, sandbox = stack
    hold_portal_mails(clean_db, Path(stack_.env["LEADRELAY_CONFIG"]))
    items = deliveries()
    invalid = [body for body, _ in items if str(body["external_id"]).startswith("bad-")]
    stop, storm_over = threading.Event(), threading.Event()
    done: list[str] = []
    storm: list[tuple[int, int]] = []
    breaker = threading.Thread(target=lambda: done.extend(chaos(stack_, broker, stop)))
    jobs: list[int] = []
    stormer = threading.Thread(target=lambda: storm.append(replay_storm(stack_, invalid, storm_over, jobs)))
    portal = threading.Thread(  # one enquiry's items in order, as a portal sends them
        target=lambda: [send(stack_.receiver_url, body, None, "hubblehq") for body in followed_up()]
    )
    breaker.start()
    stormer.start()
    portal.start()
    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(lambda item: send(stack_.receiver_url, *item), items))
    portal.join()
    breaker.join()
    time.sleep(STALL_SECONDS)  # the storm goes on until the stalled worker is back
    storm_over.set()
    stormer.join()
    finished = bulk_jobs_done(stack_, jobs)  # before the leads settle: a late job would unsettle some
    wait_for(lambda: unsettled(clean_db) == 0, timeout=300, interval=1, what="every lead to settle")
    logged = [
        line for worker in stack_.workers for line in worker.log_path.read_text(errors="replace").splitlines()
    ]
    # a worker must start, and start again after a kill (on RabbitMQ they once shared a node name)
    assert not [line for line in logged if "ResourceLocked" in line]
    # a worker ends by itself only in kombu's known failure (a Redis connection lost, its channel
    # closed: the transport has no client left to restore the unacked messages with); the
    # supervisor starts it again, as docker-compose's restart policy does
    assert [crash for crash in stack_.crashes if not KNOWN_CRASH.search(crash)] == []
    refused = [line for line in logged if "lead_processed" in line and "busy" in line]
    assert refused, "no claim was refused for want of room: the account's gate went untested"
    several = re.compile(r"process_leads\[[^\]]+\] succeeded in [0-9.e-]+s: \['\w+', '")
    assert any(several.search(line) for line in logged), "no message of several leads ran to its end"

    opportunities = sandbox.opportunities()
    names = Counter(o["Name"] for o in opportunities)
    assert [name for name, n in names.items() if n > 1] == []  # no duplicates
    chaos_names = {f"Broker chaos-{n:04}" for n in range(UNIQUE)}
    assert chaos_names <= set(names)  # none missing
    followed = {f"HubbleHq enq_chaos{n:02}" for n in range(FOLLOWED)}
    assert followed <= set(names)  # each followed-up enquiry once, its follow-ups no opportunity
    assert len(set(names) - chaos_names - followed) == HELD  # and the held mails, each once: nothing else
    utm = {o["Name"]: (o["UtmSource"], o["UtmCampaign"]) for o in opportunities}
    twinned = {f"Broker chaos-{n:04}": tuple(twin_utm(n).values()) for n in range(TWINS)}
    assert {name: utm[name] for name in twinned} == twinned  # each twin's UTM fields, merged in
    emails = Counter(c["Email"] for c in sandbox.coworkers() if c["Email"].endswith("@chaos.example"))
    assert len(emails) == UNIQUE and max(emails.values()) == 1

    engine = create_engine(clean_db)
    with engine.connect() as conn:
        states = dict(conn.execute(select(Lead.state, func.count()).group_by(Lead.state)).all())
        letters = conn.execute(
            select(Lead.external_id, DeadLetter.reason)
            .join(Lead, Lead.id == DeadLetter.lead_id)
            .where(DeadLetter.status == "open")
        ).all()
        fired = conn.execute(
            text("SELECT count(*) FROM delivery_attempts WHERE outcome <> 'ok'")
        ).scalar_one()
        dead = set(conn.execute(select(Lead.external_id).where(Lead.state == LeadState.dead)).scalars())
        held_by = set(
            conn.execute(
                select(DeadLetter.resolved_by).where(DeadLetter.reason == DeadReason.unverified_sender)
            ).scalars()
        )
        merged = conn.execute(
            select(Lead.id, Lead.opportunity_id).where(Lead.state == LeadState.merged)
        ).all()
    engine.dispose()
    notes = {o["Id"]: o.get("Notes") or "" for o in opportunities}
    assert len(merged) == 2 * FOLLOWED  # every follow-up merged, none dead or stuck
    assert all(
        notes[opp].count(f"[leadrelay lead {i}]") == 1 for i, opp in merged
    )  # once each, faults or not
    # each invalid enquiry: one open dead letter (a resend superseded the one before it)
    assert sorted(letters) == [(f"bad-{n:02}", "validation") for n in range(INVALID)]
    assert dead == {f"bad-{n:02}" for n in range(INVALID)}  # and nothing genuine ever died
    assert states[LeadState.delivered] == UNIQUE + HELD + FOLLOWED
    assert len(done) == 9 and stack_.kills == 4 and stack_.stalls == 1  # and Postgres crashed
    [(replays, resends)] = storm
    assert replays > 0 and resends > 0
    bulk_queued = sum(job["done"] - job["failed"] for job in finished)
    assert all(job["done"] == job["total"] for job in finished)
    assert len(finished) >= 2 and bulk_queued >= HELD
    assert held_by == {"api:chaos-bulk"}  # the held mails went through bulk jobs only: delivered once each
    summary = (
        f"{len(items)} deliveries, states {states}, failed calls {fired}, "
        f"storm: {replays} replays, {len(finished)} bulk replay jobs replaying {bulk_queued}, "
        f"{resends} resends of dead leads"
    )
    print(
        f"\n{broker.name}: {summary}; chaos: {', '.join(done)}; "
        f"workers restarted after a crash: {len(stack_.crashes)}"
    )
