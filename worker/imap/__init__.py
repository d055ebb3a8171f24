"""Broker inboxes: IMAP polling that never loses or repeats a lead (docs/inboxes.md).

``poll.poll_inbox`` runs one pass over one configured inbox; the Celery task
``leadrelay.poll_inbox`` and ``leadrelay poll`` both call it. The modules:

- ``connection``: IMAP over TLS, STARTTLS or loopback plain; login
- ``session``: the logged-in session and the commands a poll needs
- ``wire``: folder names, UID sets, FETCH answers read back
- ``failures``: socket, TLS and protocol failures as an InboxError
- ``oauth``: XOAUTH2 tokens, cached and refreshed
- ``keys``: intake keys for mail (Message-ID, else content)
- ``intake``: one message into the ledger, with its channel
- ``state``: UIDVALIDITY, watermark and lease per inbox
- ``preview``: what the worker will make of a mail, for the report
- ``reroute``: unrouted mail, once the routing file assigns it
- ``schedule``: beat entries
"""
