"""How a notification leaves: an e-mail over SMTP, or JSON POSTed to a webhook.

Neither transport can promise "exactly once" on its own: a crash after the
server took the message and before the outbox row is marked sent sends it again.
So each message carries a stable key the receiver can dedupe on — the e-mail's
``Message-ID`` (mail clients and most archives drop a repeat) and the webhook's
``Idempotency-Key`` header and ``idempotency_key`` field.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate

from leadrelay.notifications.message import Facts
from leadrelay.notify import NotifyError, post_json
from leadrelay.settings import Settings

SMTP_TIMEOUT_SECONDS = 10.0


def message_id(facts: Facts, sender: str) -> str:
    domain = sender.rpartition("@")[2].strip(" >") or "leadrelay.invalid"
    return f"<notification.{facts.idempotency_key}@{domain}>"


def email(facts: Facts, *, to: str, sender: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = facts.subject()
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = message_id(facts, sender)
    msg["X-Leadrelay-Lead"] = str(facts.lead_id)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(facts.text())
    return msg


def send_email(settings: Settings, facts: Facts, *, to: str) -> None:
    """Hand the e-mail to the configured SMTP server; :class:`NotifyError` if it did not take it."""
    if not settings.smtp_host:
        raise NotifyError("e-mail notifications need LEADRELAY_SMTP_HOST")
    msg = email(facts, to=to, sender=settings.smtp_from)
    context = ssl.create_default_context()
    try:
        if settings.smtp_security == "tls":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT_SECONDS, context=context
            )
        else:
            client = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT_SECONDS)
        with client:
            if settings.smtp_security == "starttls":
                client.starttls(context=context)
            if settings.smtp_username and settings.smtp_password is not None:
                client.login(settings.smtp_username, settings.smtp_password.get_secret_value())
            client.send_message(msg)
    except (smtplib.SMTPException, OSError) as exc:
        raise NotifyError(f"the SMTP server did not take the notification ({type(exc).__name__})") from None


def send_webhook(url: str, facts: Facts) -> None:
    post_json(
        url, facts.payload(), what="notification webhook", headers={"Idempotency-Key": facts.idempotency_key}
    )
