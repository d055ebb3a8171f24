"""The alerting hook: tell a person when something needs one.

Five conditions, checked by the elected scheduler every ``LEADRELAY_ALERT_INTERVAL_SECONDS``:

* ``dead_letters`` — dead letters are open; told again whenever newer ones appear;
* ``nexudus_auth:<account>`` — Nexudus refused the account's last login;
* ``inbox:<name>`` — the inbox has not been read for ``LEADRELAY_INBOX_STALE_INTERVALS``
  poll intervals (leadrelay/inbox_health.py);
* ``backlog`` — the oldest undelivered lead has waited longer than
  ``LEADRELAY_ALERT_BACKLOG_SECONDS``;
* ``scheduler`` — no scheduler has swept the ledger for longer than
  ``LEADRELAY_ALERT_SCHEDULER_LAG_SECONDS`` (the sweep fails or hangs while
  the checks still run; with no scheduler at all nothing sends this check, so
  ``/readyz`` and ``leadrelay_scheduler_last_run_age_seconds`` say it).

Each condition has a row in ``alerts`` remembering what was last said, so it is
told once when it starts (and again every ``LEADRELAY_ALERT_REPEAT_SECONDS``
while it lasts) and once when it ends — never at every check. A notice that
cannot be handed over is not remembered, so the next check tries again. Notices
carry counts, reasons, ids and account names: never a lead's content.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from leadrelay.db import insert_for, transaction, utcnow
from leadrelay.models import Alert
from leadrelay.notify import Notice, NotifyError, Send
from leadrelay.runtime import Runtime
from leadrelay.settings import Settings
from leadrelay.vitals import Vitals, runtime_vitals

log = structlog.get_logger(__name__)
DEAD_LETTERS = "dead_letters"
BACKLOG = "backlog"
SCHEDULER = "scheduler"
AUTH = "nexudus_auth"
INBOX = "inbox"


@dataclass(frozen=True, slots=True)
class Condition:
    key: str
    firing: bool
    summary: str
    mark: int = 0  # for dead letters: the newest open one


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


def conditions(vitals: Vitals, settings: Settings, *, now: datetime) -> list[Condition]:
    letters = vitals.open_dead_letter_count
    reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(vitals.open_dead_letters.items()))
    found = [
        Condition(
            DEAD_LETTERS,
            letters > 0,
            f"{letters} open dead letters ({reasons}); newest #{vitals.newest_open_dead_letter}. "
            "See `leadrelay dlq list`."
            if letters
            else "no dead letters are open",
            mark=vitals.newest_open_dead_letter,
        )
    ]
    age, limit = vitals.backlog_age(now), settings.alert_backlog_seconds
    found.append(
        Condition(
            BACKLOG,
            age > limit,
            f"the oldest undelivered lead has waited {_duration(age)} (alert after {_duration(limit)}); "
            f"{sum(vitals.undelivered.values())} leads are on their way"
            if age > limit
            else "the backlog is within bounds",
        )
    )
    found.append(_scheduler(vitals, settings))
    for state in vitals.auth:
        found.append(
            Condition(
                f"{AUTH}:{state.account}",
                state.ok is False,
                f"Nexudus refuses the login of account {state.account!r}: {state.error}"
                if state.ok is False
                else f"the login of account {state.account!r} works",
            )
        )
    for health in vitals.inboxes:
        found.append(
            Condition(
                f"{INBOX}:{health.inbox}",
                health.stale,
                f'{health.summary()}. See docs/runbook.md, "An inbox is stale or failing".'
                if health.stale
                else f"inbox {health.inbox!r} is read again",
            )
        )
    return found


def _scheduler(vitals: Vitals, settings: Settings) -> Condition:
    limit = settings.alert_scheduler_lag_seconds
    age = vitals.swept.age if vitals.swept is not None else None
    if age is None or age <= limit:
        return Condition(SCHEDULER, False, "the scheduler sweeps the ledger on time")
    return Condition(
        SCHEDULER,
        True,
        f"no scheduler has swept the ledger for {_duration(age)} (alert after {_duration(limit)}): "
        "retries, abandoned leads and lost messages wait until one does",
    )


def decide(row: Alert, condition: Condition, *, now: datetime, repeat: timedelta | None) -> str | None:
    """What to tell about a condition now: firing, reminder, resolved, or nothing."""
    if not condition.firing:
        return "resolved" if row.firing else None
    if not row.firing or condition.mark > row.mark:
        return "firing"  # it started, or it grew (new dead letters since the last notice)
    if repeat and row.last_sent_at is not None and now - row.last_sent_at >= repeat:
        return "reminder"
    return None


def _locked_row(session: Session, key: str) -> Alert:
    session.execute(
        insert_for(session, Alert)
        .values(key=key, firing=False, mark=0)
        .on_conflict_do_nothing(index_elements=["key"])
    )
    return session.execute(select(Alert).where(Alert.key == key).with_for_update()).scalar_one()


def check(rt: Runtime, *, send: Send, now: datetime | None = None) -> list[Notice]:
    """Check every condition once; send and remember what needs telling."""
    at = now or utcnow()
    with rt.sessions() as session:
        vitals = runtime_vitals(session, rt)
    repeat = timedelta(seconds=rt.settings.alert_repeat_seconds) or None
    sent = []
    for condition in conditions(vitals, rt.settings, now=at):
        # the row stays locked while the notice is sent, so two checks never both send it
        with transaction(rt.sessions) as session:
            row = _locked_row(session, condition.key)
            status = decide(row, condition, now=at, repeat=repeat)
            if status is None:
                continue
            notice = Notice(condition.key, status, condition.summary, at)
            try:
                send(notice)
            except NotifyError as err:
                log.warning("alert_not_sent", alert=condition.key, status=status, error=str(err))
                continue
            if condition.firing and not row.firing:
                row.since = at
            row.firing = condition.firing
            row.last_sent_at = at
            row.mark = max(row.mark, condition.mark)
            row.summary = condition.summary
            sent.append(notice)
            log.info("alert_sent", alert=condition.key, status=status)
    return sent
