"""A model of the lead's whole life, run step by step against the real ledger and the sandbox.

Hypothesis drives sequences of what happens to enquiries in production — partners
send and re-send them, Nexudus loses answers and fails lookups, retries run out,
admins replay, edit (as the API does, or on the page's form), bulk-replay (a job
run in chunks, resumed after a worker died) and discard dead letters, a portal's mail from an unproven sender
is held until an admin replays it (overriding the sender check), a portal follows an
enquiry up (an update, a viewing, a withdrawal: merged into its opportunity, sometimes
before the enquiry itself arrives, sometimes for one that never does), an enquiry
comes again with more to say (its twin's UTM fields and company, merged into the
opportunity and the customer), a portal mails an enquiry it also posts by webhook (the
mail before the webhook, after it, or alone: the same enquiry through two doors), a person
asks to be erased, a worker stalls past its lease while another takes the lead over, a
worker dies between reading a lead and delivering it — and the workers read whatever is
due in any order (the broker promises none: a mail stored before its webhook may be read
after it, a retry comes due behind a later lead). After every step it
checks the promise: **Nexudus never holds two opportunities made for one enquiry**.
When a sequence ends, Nexudus recovers, the workers catch up, an admin replays every
dead letter (as after an incident) and the workers catch up again: then **every lead
is settled** (delivered, attached, merged, duplicate, ignored or dead), still no enquiry
has two opportunities, and each merged follow-up is noted once, on its enquiry's.

Sequences are swarm-tested: each meets a few kinds of incident and a few of the
rarer events, so that interplays such as "a create's answer is lost, lookups go
down, the retries run out, the partner sends the enquiry again" come up often.

Every opportunity names the lead that made it (``leadrelay lead N`` in its Notes),
and the model knows which enquiry each lead carries, so the check does not trust
anything leadrelay itself records about the mapping.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Interval, literal, select, text, update

from leadrelay import ledger
from leadrelay.api.admin_edit import edit_from_form
from leadrelay.api.lead_form import form_values
from leadrelay.db import Base, transaction
from leadrelay.ledger.leases import start_reading
from leadrelay.models import TERMINAL_STATES, BulkJob, DeadLetter, DeadLetterStatus, Lead, LeadState
from leadrelay.nexudus.payloads import note_marker
from leadrelay.runtime import Runtime
from leadrelay.testing.dovecot import MX, received
from leadrelay.testing.mails import enquiries as portal_mails
from leadrelay.testing.mails import new_email, vary
from leadrelay.testing.mails import sample as mail_sample
from leadrelay.testing.partners import sample
from leadrelay.worker import bulk_jobs, introductions
from leadrelay.worker import dead_letters as dlq
from leadrelay.worker.delivery import policy
from leadrelay.worker.erasure import InFlight, erase_when_idle
from leadrelay.worker.imap.intake import Place
from leadrelay.worker.imap.store import store_message
from leadrelay.worker.pipeline import process, read
from tests.conftest import OPEN_BUDGET, routing_with, sandbox_settings
from tests.delivery.stall import expire_lease, stalled_before_call, stalled_before_send
from tests.helpers import canonical, ingest, make_due

# CI runs the same sequences every time (derandomized: a red build is reproducible and
# its coverage of the paths is stable); LEADRELAY_MODEL_EXPLORE=N runs N fresh random ones.
EXPLORE = int(os.environ.get("LEADRELAY_MODEL_EXPLORE", "0"))
STEPS_PER_SEQUENCE = 70  # eleven optional rules share the steps: each must still be reached
SEQUENCES = EXPLORE or 120  # 8,400 steps at most; the test asserts at least 2,000 were run
MADE_BY = re.compile(r"· leadrelay lead (\d+)")
SETTLE_ROUNDS = 12
MOVING = ("retry", "throttled", "waiting", "lost_lease", "busy")
FOLLOW_UP_EVENTS = ("enquiry.updated", "viewing.confirmed", "viewing.cancelled", "enquiry.closed")


Fault = tuple[str, str, str, tuple[tuple[str, Any], ...]]  # action, method, path, more fields
CREATE_LOST: Fault = ("drop_after_commit", "POST", "crmopportunities$", ())  # made, answer lost
CREATE_500: Fault = ("status_after_commit", "POST", "crmopportunities$", (("status", 500),))  # made, 500
CREATE_FAILS: Fault = ("status", "POST", "crmopportunities$", (("status", 503),))  # nothing made
LOOKUPS_DOWN: Fault = ("status", "GET", "crmopportunities$", (("status", 502),))
COWORKER_SEARCH_DROPS: Fault = ("drop", "GET", "coworkers$", ())
THROTTLED: Fault = ("throttle", "POST", "crmopportunities$", (("seconds", 0.2),))
# the incidents a sequence may meet: each a few faults at once, as they come in production
INCIDENTS: dict[str, tuple[Fault, ...]] = {
    "creates answered late or never": (CREATE_LOST,),
    "creates answer 500 yet happen": (CREATE_500,),
    "creates fail cleanly": (CREATE_FAILS,),
    "lookups down": (LOOKUPS_DOWN,),
    "answers lost, then lookups down": (CREATE_LOST, LOOKUPS_DOWN),
    "500s that create, then lookups down": (CREATE_500, LOOKUPS_DOWN),
    "customer search flaky": (COWORKER_SEARCH_DROPS,),
    "throttling": (THROTTLED,),
}
# rules a sequence may leave out
OPTIONAL = (
    "stall",
    "killed",
    "replay",
    "edit",
    "bulk",
    "discard",
    "erase",
    "held",
    "follow_up",
    "twin",
    "settling_lost",
)
READINGS = ("at once", "later", "read, then the worker dies")  # what becomes of a lead at its arrival
TRUSTED_INBOX = "model-mx"  # an inbox that believes the test mail server's Authentication-Results


def enabled(name: str) -> Any:
    return precondition(lambda self: self.lead_of and name in self.optional)


@dataclass
class Enquiry:
    number: int
    body: dict[str, Any]
    email: str
    erased: bool = False
    leads: list[int] = field(default_factory=list)
    mail: bytes | None = None  # a portal's notification e-mail, instead of a canonical webhook
    channel: str = "canonical"  # hubblehq: a portal's webhook, which the portal may follow up
    follow_ups: list[int] = field(default_factory=list)  # its follow-ups' leads


class Lifecycle(RuleBasedStateMachine):
    rt: ClassVar[Runtime]
    rescuer: ClassVar[Runtime]
    sandbox: ClassVar[Any]
    steps: ClassVar[int] = 0
    seen: ClassVar[Counter[str]] = Counter()  # what the sequences got up to, to show they reach the paths

    def __init__(self) -> None:
        super().__init__()
        self.enquiries: list[Enquiry] = []
        self.lead_of: dict[int, Enquiry] = {}
        self.numbers = itertools.count(1)
        self.incidents: list[str] = sorted(INCIDENTS)
        self.optional: set[str] = set(OPTIONAL)
        self._reset()

    def _reset(self) -> None:
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        with self.rt.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        self.sandbox.reset()
        for runtime in (self.rt, self.rescuer):
            runtime.nexudus("main")._tokens._token = None  # the reset sandbox forgot every token

    # ---- helpers ------------------------------------------------------------------

    def _run(self, lead_id: int, runtime: Runtime | None = None) -> str:
        return process(runtime or self.rt, lead_id, owner=f"model:{uuid.uuid4().hex[:8]}")

    def _letter(self, lead_id: int) -> int | None:
        with self.rt.sessions() as session:
            return session.execute(
                select(DeadLetter.id).where(
                    DeadLetter.lead_id == lead_id, DeadLetter.status == DeadLetterStatus.open
                )
            ).scalar_one_or_none()

    def _state(self, lead_id: int) -> str:
        with self.rt.sessions() as session:
            return session.execute(select(Lead.state).where(Lead.id == lead_id)).scalar_one()

    def _pick(self, data: st.DataObject) -> int:
        """A lead, usually one of the last few (sequences then dwell on one enquiry's story)."""
        leads = sorted(self.lead_of)
        return data.draw(st.one_of(st.sampled_from(leads[-3:]), st.sampled_from(leads)))

    def _record(self, enquiry: Enquiry, lead_id: int) -> None:
        if lead_id not in self.lead_of:
            enquiry.leads.append(lead_id)
            self.lead_of[lead_id] = enquiry

    # ---- partners -----------------------------------------------------------------

    @rule(
        with_reference=st.booleans(),
        reachable=st.sampled_from([True] * 7 + [False]),
        someone_known=st.sampled_from([False] * 3 + [True]),
        picked_up=st.booleans(),
    )
    def a_partner_sends_an_enquiry(
        self, with_reference: bool, reachable: bool, someone_known: bool, picked_up: bool
    ) -> None:
        """A new enquiry; ``someone_known``: another broker introduces a person already introduced."""
        number = next(self.numbers)
        known = [e for e in self.enquiries if "email" in e.body.get("contact", {})]
        person = known[-1].number if someone_known and known else number
        email = f"p{person}@model.example"
        contact = {"full_name": f"Person {person}", "email": email}
        if not reachable:  # phone only: Nexudus refuses it until an admin adds an address
            contact = {"full_name": f"Person {number}", "phone": f"+4420794{number:05}"}
        body = canonical(
            external_id=f"model-{number}" if with_reference else None,
            contact=contact,
            message=f"Enquiry {number}",
        )
        enquiry = Enquiry(number, body, email)
        self.enquiries.append(enquiry)
        self._arrives(enquiry, picked_up=picked_up)

    @precondition(lambda self: self.enquiries)
    @rule(data=st.data(), picked_up=st.booleans())
    def the_partner_sends_it_again(self, data: st.DataObject, picked_up: bool) -> None:
        # people chase what went unanswered: a dead lead's enquiry is the likeliest to come again
        chased = [self.lead_of[i] for i in self.lead_of if self._state(i) == LeadState.dead] or self.enquiries
        recent, everyone = self.enquiries[-2:], self.enquiries
        pick = st.one_of(st.sampled_from(chased), st.sampled_from(recent), st.sampled_from(everyone))
        self._arrives(data.draw(pick), picked_up=picked_up)

    @precondition(lambda self: "held" in self.optional)
    @rule(picked_up=st.booleans())
    def a_portal_mail_arrives_from_an_unproven_sender(self, picked_up: bool) -> None:
        """No Authentication-Results the inbox trusts: held as ``unverified_sender`` until replayed."""
        number = next(self.numbers)
        mail = portal_mails(1, first=number)[0]
        email = new_email(mail.template.email or "", number)
        enquiry = Enquiry(number, {"contact": {}}, email, mail=mail.raw)
        self.enquiries.append(enquiry)
        self._arrives(enquiry, picked_up=picked_up)

    @enabled("follow_up")
    @rule(data=st.data(), picked_up=st.booleans())
    def a_portal_sends_an_enquiry_or_follows_one_up(self, data: st.DataObject, picked_up: bool) -> None:
        """One rule for the portal's whole story, so the other rules keep their share of the steps:
        a HubbleHq enquiry by webhook (or announced only: its follow-ups may come first), an update,
        a viewing booked or cancelled, a withdrawal — or days pass for the follow-ups still waiting."""
        portal = [e for e in self.enquiries if e.channel == "hubblehq"]
        waiting = any(e.follow_ups for e in portal)
        what = data.draw(st.sampled_from(["enquiry", "follow-up", "follow-up", "days pass"]))
        if what == "days pass" and waiting:
            self._age_follow_ups()  # LEADRELAY_FOLLOW_UP_WAIT_SECONDS pass: an orphan ends dead
            self._workers_run(after_waiting=True)
        elif what == "enquiry" or not portal:
            enquiry = self._hubble_enquiry()
            if data.draw(st.booleans()):  # else announced only, sent later or never
                self._arrives(enquiry, picked_up=picked_up)
        else:
            # an enquiry only announced is the likelier to be followed up: its follow-ups then wait,
            # and end dead as ``no_original`` if it never comes (a path every build must reach)
            unsent = [e for e in portal if not set(e.leads) - set(e.follow_ups)]
            among = st.sampled_from(portal)
            enquiry = data.draw(st.sampled_from(unsent) | among if unsent else among)
            event = data.draw(st.sampled_from(FOLLOW_UP_EVENTS))
            desks = data.draw(st.integers(min_value=1, max_value=3)) * 5
            body = {
                "event": event,
                "enquiry": {"id": f"enq_model{enquiry.number}", "requirements": {"desks": desks}},
            }
            lead_id = ingest(self.rt, body, channel="hubblehq")
            self._record(enquiry, lead_id)
            enquiry.follow_ups.append(lead_id)
            if picked_up:
                self.seen[f"follow-up: {self._run(lead_id)}"] += 1

    def _hubble_enquiry(self) -> Enquiry:
        """A new HubbleHq enquiry (its webhook's body), not yet sent."""
        number = next(self.numbers)
        email = f"p{number}@model.example"
        body = json.loads(sample("hubblehq", "webhook-viewing-request.json").read_text())
        client = {"full_name": f"Person {number}", "email": email}
        body["enquiry"].update(id=f"enq_model{number}", client=client)
        enquiry = Enquiry(number, body, email, channel="hubblehq")
        self.enquiries.append(enquiry)
        return enquiry

    @rule(
        data=st.data(),
        order=st.sampled_from(["mail first", "webhook first", "mail only"]),
        mail_read=st.sampled_from(READINGS),
        webhook_read=st.sampled_from(READINGS),
    )
    def the_portal_mails_an_enquiry_it_also_posts(
        self, data: st.DataObject, order: str, mail_read: str, webhook_read: str
    ) -> None:
        """HubbleHq's notification e-mail of an enquiry it posts by webhook too — before the webhook,
        after it, or instead of it: one enquiry through two doors, each read at once or later."""
        portal = [e for e in self.enquiries if e.channel == "hubblehq" and e.mail is None]
        known = portal and data.draw(st.booleans())
        enquiry = data.draw(st.sampled_from(portal[-2:] + portal)) if known else self._hubble_enquiry()
        if order == "webhook first":
            self._posted(enquiry, webhook_read)
        mail = vary(
            mail_sample("hubblehq", "email-viewing-request.eml"),
            {"enq_8F2KQ7XW": f"enq_model{enquiry.number}", "amara.okafor@brightlane.io": enquiry.email},
            message_id=f"<enq_model{enquiry.number}.viewing@mail.hubblehq.com>",
        )
        with transaction(self.rt.sessions) as session:
            place = Place(TRUSTED_INBOX, "INBOX", 1, enquiry.number)  # sent again: the same message
            routing = self.rt.routing
            recorded = store_message(session, received(mail), place=place, routing=routing, default=None)
        assert recorded.lead_id is not None
        self._record(enquiry, recorded.lead_id)
        self.seen[f"portal mail of a webhook's enquiry: {order}"] += 1
        if mail_read == "at once":
            self.seen[f"portal mail read: {self._run(recorded.lead_id)}"] += 1
        elif mail_read != "later" and self._state(recorded.lead_id) == LeadState.received:
            self._read_and_killed(recorded.lead_id)
        if order == "mail first":
            self._posted(enquiry, webhook_read)

    def _posted(self, enquiry: Enquiry, reading: str) -> None:
        lead_id = self._arrives(enquiry, picked_up=reading == "at once")
        if reading not in ("at once", "later") and self._state(lead_id) == LeadState.received:
            self._read_and_killed(lead_id)

    def _age_follow_ups(self) -> None:
        bound = timedelta(seconds=self.rt.settings.follow_up_wait_seconds)
        with transaction(self.rt.sessions) as session:
            session.execute(
                update(Lead)
                .where(Lead.follow_up.is_not(None), Lead.state.not_in([s.value for s in TERMINAL_STATES]))
                .values(received_at=Lead.received_at - literal(bound, type_=Interval()))
            )

    @enabled("twin")
    @rule(data=st.data(), picked_up=st.booleans())
    def the_enquiry_comes_again_with_more_to_say(self, data: st.DataObject, picked_up: bool) -> None:
        """Its twin through the portal's other door, carrying what the first lacked: merged in."""
        told = [e for e in self.enquiries if e.mail is None and e.body.get("external_id")]
        if not told:
            return
        enquiry = data.draw(st.sampled_from(told[-3:] + told))
        body = enquiry.body
        twin = {
            **body,
            "utm": {**body["utm"], "content": f"twin-{enquiry.number}", "term": "desks"},
            "contact": {**body["contact"], "company": f"Company {enquiry.number}"},
        }
        lead_id = ingest(self.rt, twin)
        self._record(enquiry, lead_id)
        self.seen["twin sent"] += 1
        if picked_up:
            self._run(lead_id)

    def _arrives(self, enquiry: Enquiry, *, picked_up: bool) -> int:
        """Recorded at the door; a worker may pick it up at once (it usually does)."""
        if enquiry.mail is None:
            lead_id = ingest(self.rt, enquiry.body, channel=enquiry.channel)
        else:  # as the inbox poller stores a fetched message (a re-sent one is the same message)
            with transaction(self.rt.sessions) as session:  # the worker sorts it: channel, sender check
                place = Place("model", "INBOX", 1, enquiry.number)
                recorded = store_message(
                    session, enquiry.mail, place=place, routing=self.rt.routing, default=None
                )
            assert recorded.lead_id is not None
            lead_id = recorded.lead_id
            self.seen[f"mail: {self._state(lead_id)}"] += 1
        self._record(enquiry, lead_id)
        if picked_up:
            self._run(lead_id)
        return lead_id

    # ---- Nexudus ------------------------------------------------------------------

    @initialize(
        incidents=st.sets(st.sampled_from(sorted(INCIDENTS)), min_size=1, max_size=3),
        optional=st.sets(st.sampled_from(OPTIONAL), min_size=2),
    )
    def this_sequence_meets_these_events(self, incidents: set[str], optional: set[str]) -> None:
        """Swarm testing: each sequence meets a few kinds of incident and a few of the rarer events,
        so that their interplay comes up often (a uniform mix of everything rarely lines them up)."""
        self.incidents = sorted(incidents)
        self.optional = optional

    @rule(data=st.data())
    def nexudus_has_an_incident(self, data: st.DataObject) -> None:
        """One of this sequence's incidents starts: each fault a few times, or until Nexudus recovers."""
        incident = data.draw(st.sampled_from(self.incidents))
        for action, method, path, extra in INCIDENTS[incident]:
            times = data.draw(st.one_of(st.integers(min_value=1, max_value=3), st.none()))
            self.sandbox.add_fault(action, method=method, path_regex=path, times=times, **dict(extra))

    @rule()
    def nexudus_recovers(self) -> None:
        self.sandbox.clear_faults()

    # ---- workers ------------------------------------------------------------------

    def _unsettled(self) -> list[int]:
        with self.rt.sessions() as session:
            rows = session.execute(
                select(Lead.id).where(Lead.state.not_in([s.value for s in TERMINAL_STATES])).order_by(Lead.id)
            )
            return list(rows.scalars())

    def _workers_run(self, *, after_waiting: bool, data: st.DataObject | None = None) -> None:
        """The workers take every lead that is due once (``after_waiting``: every wait has passed),
        in arrival order, or (``data``) in any order: the broker promises none, a retry comes due
        after a later lead, a mail stored before its webhook may be read after it."""
        leads = self._unsettled()
        if data is not None:
            leads = data.draw(st.permutations(leads))
        for lead_id in leads:
            if after_waiting:
                make_due(self.rt, lead_id)
            self._run(lead_id)

    @precondition(lambda self: self.lead_of)
    @rule(data=st.data())
    def the_workers_run(self, data: st.DataObject) -> None:
        self._workers_run(after_waiting=False, data=data)

    @precondition(lambda self: self.lead_of)
    @rule(data=st.data(), rounds=st.integers(min_value=1, max_value=3))
    def time_passes(self, data: st.DataObject, rounds: int) -> None:
        """Retries come due (and may run out), creates that went unanswered can no longer land."""
        for _ in range(rounds):
            self._workers_run(after_waiting=True, data=data)

    @enabled("killed")
    @rule(data=st.data())
    def a_worker_dies_reading_a_lead_or_before_delivering_it(self, data: st.DataObject) -> None:
        """The worker dies after reading the lead (it waits, read, while later ones are read and
        delivered around it) or while reading it (its lease runs out; the reading is counted)."""
        unread = [i for i in self._unsettled() if self._state(i) == LeadState.received]
        if not unread:
            return
        lead_id = data.draw(st.sampled_from(unread))
        if data.draw(st.booleans()):
            self._read_and_killed(lead_id)
        else:
            self._killed_while_reading(lead_id)

    def _read_and_killed(self, lead_id: int) -> None:
        """Read (normalised, deduplicated, related: the reading lease is given back as it commits),
        and the worker dies before it delivers."""
        result = read(self.rt, lead_id, owner=f"model:{uuid.uuid4().hex[:8]}")
        self.seen[f"killed after reading: {result.state.value}"] += 1

    def _killed_while_reading(self, lead_id: int) -> None:
        """The reading started (leased, counted) and the worker died in it: the lease runs out."""
        with transaction(self.rt.sessions) as session:
            owner = f"model:{uuid.uuid4().hex[:8]}"
            start_reading(session, lead_id, owner=owner, lease_seconds=self.rt.settings.lease_seconds)
        expire_lease(self.rt, lead_id)
        self.seen["killed while reading"] += 1

    @enabled("stall")
    @rule(data=st.data(), before_renewal=st.booleans())
    def a_worker_stalls_past_its_lease_and_another_takes_over(
        self, data: st.DataObject, before_renewal: bool
    ) -> None:
        """A worker stalls before a create: inside the request (after its lease was renewed:
        the request's deadline stops it) or as the call starts (waiting for its budget: the
        renewal finds the lead taken over). A lead still on its way, if any: a settled one sends nothing."""
        unsettled = self._unsettled()
        lead_id = data.draw(st.sampled_from(unsettled)) if unsettled else self._pick(data)
        make_due(self.rt, lead_id)

        def take_over() -> None:
            expire_lease(self.rt, lead_id)
            for _ in range(4):
                if self._run(lead_id, self.rescuer) not in MOVING:
                    break
                make_due(self.rt, lead_id)

        where = dict(account="main", method="POST", path_suffix="crmopportunities", during=take_over)
        with pytest.MonkeyPatch.context() as patch:
            if before_renewal:  # any write: the customer's create or the opportunity's
                stalled = stalled_before_call(patch, self.rt, **{**where, "path_suffix": ""})
            else:
                stalled = stalled_before_send(
                    patch, self.rt, seconds=self.rt.settings.lease_seconds + 1, **where
                )
            with stalled as stalls:
                outcome = self._run(lead_id)
        if stalls:
            self.seen[f"stalled worker{' before renewal' if before_renewal else ''}: {outcome}"] += 1

    @enabled("settling_lost")
    @rule(data=st.data())
    def postgres_crashes_and_takes_back_a_settling(self, data: st.DataObject) -> None:
        """A run settles its lead, and Postgres crashes before that commit reached the disk (the
        settling does not wait for it): the settling and what rode with it are lost, and the lead
        is left being delivered under the run's lease, which runs out."""
        unsettled = self._unsettled()
        if not unsettled:
            return
        lead_id = data.draw(st.sampled_from(unsettled))
        make_due(self.rt, lead_id)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(policy, "_settled", lambda *_, **__: True)  # "committed", then lost
            outcome = self._run(lead_id)
        if self._state(lead_id) == LeadState.delivering:
            expire_lease(self.rt, lead_id)
            self.seen[f"settling lost: {outcome}"] += 1

    # ---- admins and the person ------------------------------------------------------

    @enabled("replay")
    @rule(data=st.data(), picked_up=st.booleans())
    def an_admin_replays_a_dead_letter(self, data: st.DataObject, picked_up: bool) -> None:
        lead_id = self._pick(data)
        if (letter := self._letter(lead_id)) is not None:
            with transaction(self.rt.sessions) as session:
                replayed = dlq.replay(session, letter, actor="model:admin", routing=self.rt.routing)
            self.seen[f"replay: {replayed.outcome}"] += 1
            if picked_up:
                self._run(lead_id)

    @enabled("edit")
    @rule(data=st.data(), fix_contact=st.booleans(), picked_up=st.booleans(), on_the_page=st.booleans())
    def an_admin_edits_a_dead_letter(
        self, data: st.DataObject, fix_contact: bool, picked_up: bool, on_the_page: bool
    ) -> None:
        """As the CLI and the API do (the whole canonical lead), or ``on_the_page``: the admin page's
        form, the lead on record as the form shows it, fields changed, posted."""
        # what an admin edits is a lead in the dead-letter queue (a follow-up is replayed, not edited)
        follow_ups = {i for e in self.enquiries for i in e.follow_ups}
        dead = [i for i in sorted(self.lead_of) if i not in follow_ups and self._letter(i) is not None]
        if not dead:
            return
        lead_id = data.draw(st.sampled_from(dead))
        letter = self._letter(lead_id)
        assert letter is not None
        enquiry = self.lead_of[lead_id]
        with transaction(self.rt.sessions) as session:
            try:
                if on_the_page:
                    edited = self._edit_on_the_page(session, letter, enquiry.email if fix_contact else None)
                else:
                    form = dlq.editable_lead(session, letter)
                    form["message"] = f"Edited: {form.get('message')}"
                    if fix_contact:
                        form["contact"] = {**(form.get("contact") or {}), "email": enquiry.email}
                    edited = dlq.edit(session, letter, form, actor="model:admin", routing=self.rt.routing)
            except dlq.ActionRefused:
                edited = None  # e.g. no address yet, or purged by an erasure: refused, nothing changed
        way = "form edit" if on_the_page else "edit"
        self.seen[f"{way}: {edited.outcome if edited else 'refused'}"] += 1
        if edited and "may have reached Nexudus" in edited.message:
            self.seen["edit of a lead whose create may have happened"] += 1
        if picked_up:
            self._run(lead_id)

    def _edit_on_the_page(self, session: Any, letter: int, email: str | None) -> dlq.Replayed:
        values = form_values(dlq.editable_lead(session, letter, routing=self.rt.routing))
        values["message"] = f"Fixed on the page: {values['message']}"
        if email is not None:
            values["contact.email"] = email
        return edit_from_form(session, letter, values, actor="web:model", routing=self.rt.routing)

    @enabled("bulk")
    @rule(data=st.data(), interrupted=st.booleans(), picked_up=st.booleans())
    def an_admin_bulk_replays_dead_letters(
        self, data: st.DataObject, interrupted: bool, picked_up: bool
    ) -> None:
        """Ticked on the list, replayed in bulk: a job a worker runs in chunks; ``interrupted``: its
        message is lost, the scheduler sends it again, a worker dies after an item, another goes on."""
        picks = data.draw(
            st.lists(st.sampled_from(sorted(self.lead_of)), min_size=1, max_size=5, unique=True)
        )
        letters = [letter for lead_id in picks if (letter := self._letter(lead_id)) is not None]
        if not letters:
            return
        with transaction(self.rt.sessions) as session:
            job_id = bulk_jobs.create(
                session, action="replay", letter_ids=letters, actor="web:model", why=None
            ).id
        publish = len  # the model's workers find the queued leads in the ledger
        if interrupted:  # its message was lost (a killed worker, a flushed broker): the scheduler resends it
            with transaction(self.rt.sessions) as session:
                job = session.get(BulkJob, job_id)
                assert job is not None
                job.updated_at -= timedelta(seconds=self.rt.settings.requeue_after_seconds + 1)
            if job_id in bulk_jobs.resume_stale(self.rt, send_job=lambda _: True):
                self.seen["bulk replay resumed"] += 1
            bulk_jobs.run_chunk(self.rt, job_id, publish=publish, limit=1)  # and its worker dies again
        while bulk_jobs.run_chunk(self.rt, job_id, publish=publish):
            pass
        with self.rt.sessions() as session:
            job = session.get(BulkJob, job_id)
            assert job is not None and (job.status, job.done) == ("done", job.total)
            self.seen["bulk replay: queued"] += job.total - job.failed
        if picked_up:
            for lead_id in picks:
                self._run(lead_id)

    @enabled("discard")
    @rule(data=st.data())
    def an_admin_discards_a_dead_letter(self, data: st.DataObject) -> None:
        lead_id = self._pick(data)
        if (letter := self._letter(lead_id)) is not None:
            with transaction(self.rt.sessions) as session:
                dlq.discard(session, letter, actor="model:admin", why="the model says so")
            self.seen["discard"] += 1

    @enabled("erase")
    @precondition(lambda self: not any(e.erased for e in self.enquiries))  # rare: once a sequence
    @rule(data=st.data())
    def the_person_asks_to_be_erased(self, data: st.DataObject) -> None:
        enquiry = data.draw(st.sampled_from(self.enquiries))
        try:
            erase_when_idle(self.rt.sessions, enquiry.email, actor="model:dpo", wait_seconds=0)
        except InFlight:
            return
        enquiry.erased = True
        self.seen["erase"] += 1

    def _catch_up(self) -> None:
        for _ in range(SETTLE_ROUNDS):
            if not self._unsettled():
                return
            self._workers_run(after_waiting=True)

    # ---- the promises ---------------------------------------------------------------

    def _opportunities_per_enquiry(self) -> Counter[int]:
        made = Counter()
        for opportunity in self.sandbox.opportunities():
            found = MADE_BY.search(opportunity.get("Notes") or "")
            assert found, f"an opportunity leadrelay did not make: {opportunity.get('Name')}"
            made[self.lead_of[int(found.group(1))].number] += 1
        return made

    @invariant()
    def nexudus_holds_at_most_one_opportunity_per_enquiry(self) -> None:
        type(self).steps += 1
        twice = {number: n for number, n in self._opportunities_per_enquiry().items() if n > 1}
        assert not twice, f"enquiries with more than one opportunity: {twice}"

    def teardown(self) -> None:
        """Nexudus recovers, the workers catch up, an admin replays every dead letter (as after an
        incident), the workers catch up again: every lead settles, each enquiry at most once."""
        self.sandbox.clear_faults()
        self._catch_up()
        self._age_follow_ups()  # an enquiry never sent: its follow-ups' wait runs out
        self._catch_up()
        with transaction(self.rt.sessions) as session:
            letters = dlq.matching_ids(session, dlq.Filter())
            for letter in letters:
                dlq.replay(session, letter, actor="model:admin", routing=self.rt.routing)
        self.seen["replayed after the incident"] += len(letters)
        self._catch_up()
        unsettled = {i: self._state(i) for i in self.lead_of if self._state(i) not in TERMINAL_STATES}
        assert not unsettled, f"leads that never settle: {unsettled}"
        self._count_what_happened()
        self.nexudus_holds_at_most_one_opportunity_per_enquiry()
        self._delivered_leads_point_at_their_enquirys_opportunity()
        self._every_opportunity_is_accounted_for()
        self._merged_follow_ups_are_noted_once_on_their_enquirys_opportunity()

    def _count_what_happened(self) -> None:
        with self.rt.sessions() as session:
            for reason, status in session.execute(select(DeadLetter.reason, DeadLetter.status)):
                self.seen[f"dead letter: {reason}, {status}"] += 1
            for (state,) in session.execute(select(Lead.state)):
                self.seen[f"lead: {state}"] += 1
            unknown = session.execute(
                text("SELECT count(*) FROM delivery_attempts WHERE outcome = 'unknown'")
            ).scalar_one()
            self.seen["create or write answered unknown"] += unknown
            merged = session.execute(
                select(Lead.opportunity_id, Lead.written).where(
                    Lead.state == LeadState.duplicate, Lead.written.is_not(None)
                )
            ).all()
        merged = [(opportunity, written) for opportunity, written in merged if written]  # erased: JSON null
        self.seen["twin merged in"] += len(merged)
        held = {o["Id"]: o for o in self.sandbox.opportunities()}
        for opportunity_id, written in merged:  # nobody edits in the model: what a twin wrote stays
            wrote = {k: v for k, v in written.get("opportunity", {}).items() if k != "Id"}
            if opportunity_id in held:
                assert {k: held[opportunity_id][k] for k in wrote} == wrote, opportunity_id

    def _delivered_leads_point_at_their_enquirys_opportunity(self) -> None:
        made_for: dict[int, int] = {}
        for opportunity in self.sandbox.opportunities():
            found = MADE_BY.search(opportunity.get("Notes") or "")
            assert found is not None
            made_for[opportunity["Id"]] = self.lead_of[int(found.group(1))].number
        with self.rt.sessions() as session:
            delivered = session.execute(
                select(Lead.id, Lead.opportunity_id).where(Lead.state == LeadState.delivered)
            ).all()
        for lead_id, opportunity_id in delivered:
            assert made_for.get(opportunity_id) == self.lead_of[lead_id].number, (
                f"lead {lead_id} points at opportunity {opportunity_id}, not its enquiry's"
            )

    def _merged_follow_ups_are_noted_once_on_their_enquirys_opportunity(self) -> None:
        notes = {o["Id"]: o.get("Notes") or "" for o in self.sandbox.opportunities()}
        with self.rt.sessions() as session:
            merged = session.execute(
                select(Lead.id, Lead.opportunity_id).where(Lead.state == LeadState.merged)
            ).all()
        for lead_id, opportunity_id in merged:
            enquiry = self.lead_of[lead_id]
            made = MADE_BY.search(notes.get(opportunity_id, ""))
            assert made and self.lead_of[int(made.group(1))] is enquiry, f"follow-up {lead_id} on another's"
            assert notes[opportunity_id].count(note_marker(lead_id)) == 1, (
                f"follow-up {lead_id} not noted once"
            )
        self.seen["follow-up merged"] += len(merged)

    def _every_opportunity_is_accounted_for(self) -> None:
        """Nothing lands unrecorded: a lead of the enquiry that made an opportunity holds it, or
        says a create may have made it under its Name (for an operator, e.g. after an erasure)."""
        with self.rt.sessions() as session:
            rows = session.execute(
                select(Lead.id, Lead.opportunity_id, Lead.opportunity_name, Lead.create_sent_at)
            ).all()
        held = {(self.lead_of[i].number, opp) for i, opp, _, _ in rows if opp is not None}
        maybe = {(self.lead_of[i].number, name) for i, _, name, sent in rows if sent is not None}
        for opportunity in self.sandbox.opportunities():
            found = MADE_BY.search(opportunity.get("Notes") or "")
            assert found is not None
            number = self.lead_of[int(found.group(1))].number
            assert (number, opportunity["Id"]) in held or (number, opportunity["Name"]) in maybe, (
                f"opportunity {opportunity['Id']} ({opportunity['Name']}) of enquiry {number} "
                "is recorded by none of its leads"
            )


def _count_the_introductions_decisions(monkeypatch: pytest.MonkeyPatch, seen: Counter[str]) -> None:
    """Where each later introduction was decided: by its claim (a lead just read) or after it."""
    claim, relate = ledger.claim, introductions.relate

    def counted_claim(*args: Any, **kwargs: Any) -> Any:
        row = claim(*args, **kwargs)
        if row is not None and row.decided and row.first_introduction != row.id:
            seen["later introduction decided by its claim"] += 1
        return row

    def counted_relate(*args: Any, **kwargs: Any) -> Any:
        relation = relate(*args, **kwargs)
        if not relation.is_first:
            seen["later introduction decided after its claim"] += 1
        return relation

    monkeypatch.setattr(ledger, "claim", counted_claim)
    monkeypatch.setattr(introductions, "relate", counted_relate)


@pytest.mark.timeout(900)
def test_no_sequence_of_events_makes_a_second_opportunity_or_a_stuck_lead(
    clean_db, sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_settings = sandbox_settings(
        clean_db,
        sandbox,
        nexudus_timeout=1.0,
        budget_wait_seconds=0.5,
        lease_seconds=5,
        retry_schedule=(0, 1),  # retries run out after a second failure: dead letters come up often
        follow_up_wait_seconds=3600.0,  # passes only when the model says so (days_pass_for_…)
    )
    trusted = {"host": "127.0.0.1", "username": "model", "password": "-", "trusted_authserv_ids": [MX]}
    routing = routing_with(accounts=OPEN_BUDGET, inboxes={TRUSTED_INBOX: trusted})
    Lifecycle.rt = Runtime.load(model_settings, routing)
    Lifecycle.rescuer = Runtime.load(model_settings, routing)
    Lifecycle.sandbox = sandbox
    Lifecycle.steps = 0
    Lifecycle.seen = Counter()
    _count_the_introductions_decisions(monkeypatch, Lifecycle.seen)
    try:
        run_state_machine_as_test(
            Lifecycle,
            settings=settings(
                max_examples=SEQUENCES,
                stateful_step_count=STEPS_PER_SEQUENCE,
                deadline=None,
                database=None,
                derandomize=not EXPLORE,
                phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],  # no slow "explain"
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )
    finally:
        Lifecycle.rt.close()
        Lifecycle.rescuer.close()
    seen = Lifecycle.seen
    print(f"\nlifecycle model: {SEQUENCES} sequences, {Lifecycle.steps} checked steps")
    for what, count in sorted(seen.items()):
        print(f"  {count:6}  {what}")
    assert Lifecycle.steps >= 2000
    if EXPLORE:
        return  # fresh random sequences: what they reached is printed above, not promised
    # the (same, derandomized) sequences reached the paths the promise is about, not only the happy one
    reached = {
        "a stalled worker": sum(n for what, n in seen.items() if what.startswith("stalled worker:")),
        "a worker stalled before its renewal, refused by it": seen[
            "stalled worker before renewal: lost_lease"
        ],
        "a superseded dead letter": seen["dead letter: exhausted, superseded"]
        + seen["dead letter: validation, superseded"],
        "an exhausted lead": sum(n for what, n in seen.items() if what.startswith("dead letter: exhausted")),
        "an edit": seen["edit: queued"],
        "an edit on the page's form": seen["form edit: queued"],
        "a bulk replay": seen["bulk replay: queued"],
        "a bulk replay resumed": seen["bulk replay resumed"],
        "a replay": seen["replay: queued"] + seen["replayed after the incident"],
        "an erasure": seen["erase"],
        "a held mail replayed": seen["dead letter: unverified_sender, replayed"],
        "an unanswered write": seen["create or write answered unknown"],
        "a follow-up merged": seen["follow-up merged"],
        "a follow-up waiting for its enquiry": seen["follow-up: waiting"],
        "a follow-up whose enquiry never came": seen["dead letter: no_original, replayed"]
        + seen["dead letter: no_original, open"],
        "a twin merged into its opportunity": seen["twin merged in"],
        "a worker killed between reading and delivering": seen["killed after reading: normalised"],
        "a worker killed while reading": seen["killed while reading"],
        "a webhook's enquiry by e-mail first": seen["portal mail of a webhook's enquiry: mail first"],
        "a settling Postgres lost": sum(n for what, n in seen.items() if what.startswith("settling lost:")),
        "a later introduction decided by its claim": seen["later introduction decided by its claim"],
        "a later introduction decided after its claim": seen["later introduction decided after its claim"],
    }
    assert all(reached.values()), f"paths no sequence reached: {[k for k, v in reached.items() if not v]}"
