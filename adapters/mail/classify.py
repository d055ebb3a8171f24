"""Mail that is clearly not a lead: bounces, auto-replies, replies, newsletters.

Each table row is a reason an operator will read in the ``ignored`` list. Strong
signals settle it; newsletter signals only count when no contact was found, since
portals send genuine notifications with ``List-Unsubscribe`` too.
"""

from __future__ import annotations

import re

from leadrelay.adapters.mail.message import Mail

_BOUNCE_SENDERS = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|bounce[s]?)@", re.IGNORECASE)
_BOUNCE_TYPES = frozenset(("multipart/report", "message/delivery-status", "message/disposition-notification"))
SUBJECT_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"^\s*(undeliverable|undelivered mail|delivery status notification|mail delivery failed|"
            r"returned mail|delivery failure|unzustellbar|nicht zustellbar)",
            re.I,
        ),
        "a delivery status notification",
    ),
    (
        re.compile(
            r"^\s*(automatic reply|auto(matic)?[- ]?reply|auto:|out of (the )?office|abwesenheitsnotiz|"
            r"automatische antwort|abwesend|réponse automatique)",
            re.I,
        ),
        "an automatic reply",
    ),
    # \s*+: the spaces before an optional "[2]" are taken whole, not split between
    # two runs in every way (quadratic on "Re" and a long run of spaces)
    (re.compile(r"^\s*((re|aw|antw|sv|vs|réf)\s*+(\[\d+\])?\s*:\s*)+", re.I), "a reply in a conversation"),
    (re.compile(r"^\s*(read|gelesen|lu)\s*:", re.I), "a read receipt"),
)
_FORWARD_PREFIX = re.compile(r"^\s*((fwd?|fw|wg|tr|wtr)\s*:\s*)+", re.IGNORECASE)
_NEWSLETTER_SUBJECT = re.compile(
    r"\b(newsletter|digest|weekly|monthly|roundup|round-up|webinar|market report|insights|unsubscribe|"
    r"tips|offer|% off|discount)\b",
    re.IGNORECASE,
)


def without_forward_prefix(subject: str) -> str:
    return _FORWARD_PREFIX.sub("", subject)


def not_a_lead(mail: Mail, subjects: tuple[str, ...]) -> str | None:
    """Why this mail is surely not a lead, or None. ``subjects``: every layer's subject."""
    if _BOUNCE_SENDERS.match(mail.sender) or _BOUNCE_TYPES & set(mail.content_types):
        return "a delivery status notification"
    auto = mail.headers.get("auto-submitted", "").lower()
    if auto.startswith("auto-replied") or "x-autoreply" in mail.headers or "x-autorespond" in mail.headers:
        return "an automatic reply"
    for subject in subjects:
        bare = without_forward_prefix(subject)
        for pattern, reason in SUBJECT_RULES:
            if pattern.match(bare):
                return reason
    return None


def looks_like_newsletter(mail: Mail, subject: str) -> bool:
    bulk = mail.headers.get("precedence", "").lower() in ("bulk", "list", "junk")
    listed = "list-id" in mail.headers or "list-unsubscribe" in mail.headers
    return bulk or listed or bool(_NEWSLETTER_SUBJECT.search(subject))
