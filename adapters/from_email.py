"""Reading a portal's notification e-mail, forwarded or not, by its labels.

The innermost forwarded message is the notification; its labelled values are
matched against the portal's label table. What labels miss is looked for by
the portal's reference and listing patterns (subject, body, Message-ID, links),
and the request kind is read from the subject.
"""

from __future__ import annotations

import fnmatch
import re

from leadrelay.adapters.base import Limits, NotALead, ParseError
from leadrelay.adapters.fields import Found, as_text, build_draft
from leadrelay.adapters.mail.classify import (
    REPLY,
    is_reply,
    looks_like_newsletter,
    not_a_lead,
)
from leadrelay.adapters.mail.forwards import Layer, unwrap
from leadrelay.adapters.mail.message import Mail, read_mail
from leadrelay.adapters.mail.pairs import pairs_in
from leadrelay.adapters.mail.replies import without_reply_prefix
from leadrelay.adapters.parsing.text import emails_in, kind_in
from leadrelay.adapters.spec import PortalSpec
from leadrelay.adapters.unread import unreachable

_GUESS = (0, 0, 0)
_PATTERN = (10, 0, 0)
_EXACT = 3
_CONTACT_FIELDS = ("contact.email", "contact.phone", "contact")
_NAME_FIELDS = ("contact", "contact.full_name", "contact.first_name", "contact.last_name")
_NOTIFICATION_LABELS = 2  # labelled values that make quoted or bulk-sent text a portal's notification


def sender_matches(address: str, pattern: str) -> bool:
    """``hubblehq.com`` matches any address there or at a subdomain; ``*@x.com``, ``a@x.com`` as written."""
    address, pattern = address.lower(), pattern.lower().strip()
    if not address or not pattern:
        return False
    if "@" in pattern:
        return fnmatch.fnmatchcase(address, pattern)
    domain = address.rpartition("@")[2]
    return fnmatch.fnmatchcase(domain, pattern) or fnmatch.fnmatchcase(domain, f"*.{pattern}")


def exact_field(spec: PortalSpec, label: str) -> str | None:
    """The field ``label`` names when it is exactly one of the portal's labels."""
    match = spec.labels.match(label)
    return match.field if match is not None and match.score[0] == _EXACT else None


def _labelled(found: Found, spec: PortalSpec, lead: Layer) -> int:
    """Offers every value the portal's labels name; how many there were."""
    count = 0

    def is_label(line: str) -> bool:
        match = spec.labels.match(line)
        return match is not None and match.score[0] == _EXACT

    for text in lead.texts:
        for pair in pairs_in(text, is_label):
            match = spec.labels.match(pair.label)
            if match is not None:
                value = pair.full_value() if match.field == "message" else pair.value
                found.offer(match.field, value, pair.label, match.score)
                count += 1
    return count


def _by_pattern(
    found: Found, field: str, spec_patterns: tuple[re.Pattern[str], ...], haystacks: list[str]
) -> None:
    labelled = found.first(field)
    for text in ([as_text(labelled)] if labelled is not None else []) + haystacks:
        for pattern in spec_patterns:
            match = pattern.search(text)
            if match:
                found.offer(field, match.group(match.lastindex or 0), "pattern", _PATTERN)
                return


def _client_email(found: Found, spec: PortalSpec, mail: Mail, layers: list[Layer]) -> None:
    not_client = {layer.sender for layer in layers} | set(mail.recipients)
    broker = found.first("broker.email")
    for text in layers[-1].texts:
        for address in emails_in(text):
            lowered = address.lower()
            if (
                lowered in not_client
                or lowered == broker
                or any(sender_matches(lowered, s) for s in spec.senders)
            ):
                continue
            found.offer("contact.email", address, "unlabelled", _GUESS)
            return


def _names_a_client(found: Found, spec: PortalSpec) -> bool:
    """Whether a mail with newsletter signals still reads as a notification: it carries the
    portal's reference, or names a person with an address or number that is not the portal's own."""
    if found.has("external_id"):
        return True
    named = any(found.has(path) for path in _NAME_FIELDS)
    addresses = emails_in(as_text(found.first("contact.email"))) if found.has("contact.email") else []
    client = any(not any(sender_matches(a.lower(), s) for s in spec.senders) for a in addresses)
    reachable = client or found.has("contact.phone")
    return named and reachable


def too_big(size: int, limit: int, *, kept: int | None = None) -> str:
    """Why a message is not read, for the dead letter; ``kept``: the bytes kept of a longer one."""
    what = "its raw bytes are kept" if kept is None else f"its first {kept:,} bytes are kept"
    return (
        f"the message is {size:,} bytes, over the {limit:,}-byte limit (LEADRELAY_MAX_MESSAGE_BYTES): "
        f"it is not read; {what}"
    )


def read_email(body: bytes, spec: PortalSpec, limits: Limits, *, require_contact: bool = True) -> Found:
    if len(body) > limits.message_bytes:
        raise ParseError(too_big(len(body), limits.message_bytes))
    mail = read_mail(body, limits)
    if mail.unread:
        raise ParseError(f"the message is not read: {mail.unread}; its raw bytes are kept")
    layers = unwrap(mail)
    lead = layers[-1]
    reason = not_a_lead(mail, tuple(layer.subject for layer in layers), quotes_original=len(layers) > 1)
    if reason:
        raise NotALead(f"this is {reason}")
    subject = without_reply_prefix(lead.subject or mail.subject)
    for pattern, follow_up in spec.follow_up_subjects:
        if pattern.search(subject):
            raise NotALead(f"this follows up an enquiry already sent ({follow_up.heading.lower()})")
    for pattern, why in spec.ignored_subjects:
        if pattern.search(subject):
            raise NotALead(why)

    found = Found()
    labelled = _labelled(found, spec, lead)
    if labelled < _NOTIFICATION_LABELS and any(is_reply(layer.subject) for layer in layers):
        raise NotALead(f"this is {REPLY} that quotes no {spec.name} notification")
    outer = [text for layer in reversed(layers[:-1]) for text in (layer.subject, *layer.texts)]
    haystacks = [subject, *lead.texts, lead.message_id, *lead.links, *outer, *mail.links]
    _by_pattern(found, "external_id", spec.references, haystacks)
    _by_pattern(found, "listing.id", spec.listing_patterns, [*lead.texts, *lead.links])
    opening = "\n".join(text[:400] for text in lead.texts)
    found.offer("kind", kind_in(subject) or kind_in(opening), "subject", _GUESS)
    found.offer("received_at", lead.date or mail.date, "date", _GUESS)
    if not found.has("contact.email"):
        _client_email(found, spec, mail, layers)
    if looks_like_newsletter(mail, subject) and not _names_a_client(found, spec):
        raise NotALead("looks like a newsletter or marketing mail, not a lead")
    if require_contact and not any(found.has(field) for field in _CONTACT_FIELDS):
        raise ParseError(unreachable(found, build_draft(found, spec.reading), spec.labels, door="email"))
    return found
