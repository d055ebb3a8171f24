"""Mail that is clearly not a lead: bounces, auto-replies, replies, newsletters.

Each table row is a reason an operator will read in the ``ignored`` list. Strong
signals settle it: a delivery report (``multipart/report``, ``MAILER-DAEMON``,
"Undeliverable:"), an automatic reply (RFC 3834 ``Auto-Submitted: auto-replied``,
``X-Autoreply``, ``X-Autorespond``, ``Precedence: auto_reply``, or an
out-of-office subject in English,
German, French, Dutch or Spanish). A reply is no lead unless it quotes the
original notification (then the quoted original is read, and the ledger knows it
as a repeat). Newsletter signals (``List-Unsubscribe``, ``Precedence: bulk``)
only count when nothing in the mail is labelled as a lead's contact, since
portals send genuine notifications with ``List-Unsubscribe`` too.
"""

from __future__ import annotations

import re

from leadrelay.adapters.mail.message import Mail

_BOUNCE_SENDERS = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|bounce[s]?)@", re.IGNORECASE)
_AUTO_REPLY_HEADERS = ("x-autoreply", "x-autorespond", "x-autoresponder", "x-auto-reply")
_AUTO_PRECEDENCE = frozenset(("auto_reply", "auto-reply"))
REPLY = "a reply in a conversation"
# \s*+: the spaces before an optional "[2]" are taken whole, not split between
# two runs in every way (quadratic on "Re" and a long run of spaces)
_REPLY_SUBJECT = re.compile(r"^\s*((re|aw|antw|sv|vs|réf|rv)\s*+(\[\d+\])?\s*:\s*)+", re.I)
_BOUNCE_TYPES = frozenset(("multipart/report", "message/delivery-status", "message/disposition-notification"))
SUBJECT_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"^\s*(undeliverable|undelivered mail|delivery status notification|mail delivery failed|"
            r"returned mail|delivery failure|failure notice|mail delivery (failure|subsystem)|unzustellbar|"
            r"nicht zustellbar|zustellung fehlgeschlagen|non remis|non distribuable|échec de (la )?remise|"
            r"onbestelbaar|niet bezorgd|no se puede entregar|no entregado|mensaje no entregado|"
            r"error de entrega|delivery delayed|delivery has failed|mail system error)",
            re.I,
        ),
        "a delivery status notification",
    ),
    (
        re.compile(
            r"^\s*(automatic reply|auto(matic)?[- ]?reply|auto:|auto-response|autoresponse|"
            r"out of (the )?office|ooo\b|abwesenheitsnotiz|automatische antwort|abwesend|"
            r"réponse automatique|absence\b|absent\b|"
            r"automatisch antwoord|afwezig|respuesta automática|respuesta automatica|fuera de la oficina|"
            r"ausente)",
            re.I,
        ),
        "an automatic reply",
    ),
    (_REPLY_SUBJECT, REPLY),
    (re.compile(r"^\s*(read|gelesen|lu)\s*:", re.I), "a read receipt"),
)
_FORWARD_PREFIX = re.compile(r"^\s*((fwd?|fw|wg|tr|wtr)\s*:\s*)+", re.IGNORECASE)
_NEWSLETTER_SUBJECT = re.compile(
    r"\b(newsletter|digest|weekly|monthly|roundup|round-up|webinar|market report|insights|unsubscribe|"
    r"tips|offer|% off|discount)\b",
    re.IGNORECASE,
)


def is_reply(subject: str) -> bool:
    return _REPLY_SUBJECT.match(without_forward_prefix(subject)) is not None


def without_forward_prefix(subject: str) -> str:
    return _FORWARD_PREFIX.sub("", subject)


def _auto_reply(mail: Mail) -> bool:
    auto = mail.headers.get("auto-submitted", "").lower()
    return (
        auto.startswith("auto-replied")
        or any(name in mail.headers for name in _AUTO_REPLY_HEADERS)
        or mail.headers.get("precedence", "").lower() in _AUTO_PRECEDENCE
    )


def not_a_lead(mail: Mail, subjects: tuple[str, ...], *, quotes_original: bool = False) -> str | None:
    """Why this mail is surely not a lead, or None. ``subjects``: every layer's subject.

    ``quotes_original``: the mail forwards or quotes another message, so a reply is
    read for what it quotes rather than ignored.
    """
    if _BOUNCE_SENDERS.match(mail.sender) or _BOUNCE_TYPES & set(mail.content_types):
        return "a delivery status notification"
    if _auto_reply(mail):
        return "an automatic reply"
    for subject in subjects:
        bare = without_forward_prefix(subject)
        for pattern, reason in SUBJECT_RULES:
            if pattern.match(bare) and not (reason == REPLY and quotes_original):
                return reason
    return None


def looks_like_newsletter(mail: Mail, subject: str) -> bool:
    bulk = mail.headers.get("precedence", "").lower() in ("bulk", "list", "junk")
    listed = "list-id" in mail.headers or "list-unsubscribe" in mail.headers
    return bulk or listed or bool(_NEWSLETTER_SUBJECT.search(subject))
