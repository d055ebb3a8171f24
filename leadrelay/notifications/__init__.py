"""Speed to lead: what a salesperson is told of a new opportunity or a later introduction, and how.

- ``message``: the notification's text and JSON, built from the ledger's lead (pure)
- ``transports``: e-mail over SMTP and a Slack/Teams-style JSON webhook, each with an
  idempotency key the receiver can dedupe on (Message-ID, ``Idempotency-Key``)

The outbox (which notifications are owed, and their sending under a claim) is
the worker's: ``leadrelay.worker.speed_to_lead``.
"""
