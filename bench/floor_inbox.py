"""The inbox floor: fetch every message, store it raw in the ledger, flag it — no parsing at all.

The same mailbox and batch size as leadrelay's poll pass; per batch: one
``UID FETCH … BODY.PEEK[]``, one transaction inserting each raw message as a
``received`` lead (the same row shape as the receiver's; the intake key is the
UID, since reading the Message-ID would be parsing), one ``UID STORE +FLAGS
(\\Seen)``. imaplib + psycopg, nothing else of leadrelay's but the FETCH reader.
"""

from __future__ import annotations

import hashlib
import imaplib
from datetime import UTC, datetime

import psycopg

from leadrelay.worker.imap.wire import parse_fetch, uid_set

SQL = (
    "INSERT INTO leads (channel, source, intake_key, received_at, content_type, raw_body, raw_sha256,"
    " raw_meta, state, state_changed_at, attempts, unfinished_runs, next_attempt_at, enqueued_at)"
    " VALUES ('mail', 'email', %(key)s, %(at)s, 'message/rfc822', %(body)s, %(sha)s, '{}', 'received',"
    " %(at)s, 0, 0, %(at)s, %(at)s) ON CONFLICT (intake_key) DO NOTHING RETURNING id"
)


def import_all(
    host: str, port: int, user: str, password: str, folder: str, db: psycopg.Connection, batch: int
) -> int:
    """One pass over ``folder``: every message stored (on ``db``) and flagged; how many were stored."""
    imap = imaplib.IMAP4(host, port, timeout=30)
    imap.login(user, password)
    imap.select(folder)
    _, data = imap.uid("SEARCH", "ALL")
    uids = [int(u) for u in data[0].split()]
    stored = 0
    for start in range(0, len(uids), batch):
        chunk = uids[start : start + batch]
        _, data = imap.uid("FETCH", uid_set(chunk), "(UID BODY.PEEK[])")
        with db.transaction():
            for uid, raw in sorted(parse_fetch(data).items()):
                at = datetime.now(UTC)
                key = f"floor:{folder}:{uid}"
                params = {"key": key, "at": at, "body": raw, "sha": hashlib.sha256(raw).hexdigest()}
                stored += db.execute(SQL, params).rowcount
        imap.uid("STORE", uid_set(chunk), "+FLAGS.SILENT", r"(\Seen)")
    imap.logout()
    return stored


def unflag(host: str, port: int, user: str, password: str, folder: str) -> None:
    """Take the floor's \\Seen flags off again, so that leadrelay finds the mailbox as it was."""
    imap = imaplib.IMAP4(host, port, timeout=30)
    imap.login(user, password)
    imap.select(folder)
    imap.uid("STORE", "1:*", "-FLAGS.SILENT", r"(\Seen)")
    imap.logout()
