"""The portals' notification e-mails (adapters/<channel>/fixtures), and distinct enquiries made from them.

A variant is the same notification about another enquiry: the portal reference
and the client's address are rewritten wherever they occur — headers, plain
text, HTML, quoted-printable, base64, forwarded attachments — and the mail gets
its own Message-ID.
"""

from __future__ import annotations

import base64
import email
import email.utils
import quopri
import re
from dataclasses import dataclass
from datetime import timedelta
from email.message import Message
from email.policy import compat32
from pathlib import Path

from leadrelay.testing import partners
from leadrelay.worker.imap.keys import message_id_key

_HEADERS = ("Subject", "Message-ID", "References", "In-Reply-To")
LABELS = {"hubblehq": "HubbleHq", "liquidspace": "LiquidSpace", "workthere": "Workthere", "kontor": "Kontor"}


@dataclass(frozen=True)
class Template:
    path: Path
    channel: str
    ref: str | None  # the portal reference (external_id) the mail carries
    email: str | None
    lead: bool  # False: the adapter says it is not a lead (a reply, a bounce, a newsletter)
    follow_up: bool = False  # an update, a viewing or a withdrawal of an enquiry: read, not a new lead

    @property
    def key(self) -> str:
        return f"{self.channel}/{self.path.name}"

    def raw(self) -> bytes:
        return self.path.read_bytes()


def templates() -> list[Template]:
    """Every partner's mails: all the samples, then all the variations, each by channel and name."""
    mails = [c for c in partners.partner_cases() if c.kind == "email" and not c.several]
    return [
        Template(
            path=case.path,
            channel=case.channel,
            ref=case.expected.get("external_id"),
            email=case.expected.get("contact.email"),
            lead=case.lead,
            follow_up=case.follow_up,
        )
        for case in sorted(mails, key=lambda c: (c.group, c.channel, c.path.name))
    ]


def sample(channel: str, name: str) -> bytes:
    return partners.sample(channel, name).read_bytes()


def new_ref(ref: str, serial: int) -> str:
    """The same shape of reference (prefix, alphabet) for another enquiry."""
    return f"{ref[:-4]}{5000 + serial:04d}"


def new_email(address: str, serial: int) -> str:
    local, _, domain = address.partition("@")
    return f"{local}.v{serial}@{domain}"


def _replace(data: bytes, replacements: dict[str, str]) -> bytes:
    for old, new in replacements.items():  # addresses are written in any case (Zoe@Brennan-Studio…)
        data = re.sub(re.escape(old.encode()), new.encode(), data, flags=re.IGNORECASE)
    return data


def _rewrite_part(part: Message, replacements: dict[str, str]) -> None:
    for name in _HEADERS:
        if part[name] is not None:
            part.replace_header(name, _replace(str(part[name]).encode(), replacements).decode())
    payload = part.get_payload()
    if part.is_multipart() or not isinstance(payload, str):
        return
    encoding = str(part.get("Content-Transfer-Encoding", "7bit")).lower().strip()
    raw = payload.encode("utf-8", "surrogateescape")  # 8bit bodies may hold non-ASCII text
    if encoding == "base64":
        payload = base64.encodebytes(_replace(base64.b64decode(raw), replacements)).decode()
    elif encoding == "quoted-printable":
        payload = quopri.encodestring(_replace(quopri.decodestring(raw), replacements)).decode()
    else:
        payload = _replace(raw, replacements).decode("ascii", "surrogateescape")
    part.set_payload(payload)


def vary(
    raw: bytes, replacements: dict[str, str], *, message_id: str | None = None, minutes: int = 0
) -> bytes:
    """``raw`` with every occurrence of each key replaced, a new Message-ID and a later Date."""
    msg = email.message_from_bytes(raw, policy=compat32)
    for part in msg.walk():
        _rewrite_part(part, replacements)
    if message_id is not None:
        del msg["Message-ID"]
        msg["Message-ID"] = message_id
    if minutes and msg["Date"]:
        date = email.utils.parsedate_to_datetime(str(msg["Date"])) + timedelta(minutes=minutes)
        msg.replace_header("Date", email.utils.format_datetime(date))
    return re.sub(rb"\r?\n", b"\r\n", msg.as_bytes())


def unrouted(serial: int) -> bytes:
    """An enquiry from a sender no channel knows, naming no portal."""
    return (
        f"From: Bookings <bookings@newbroker.example>\r\n"
        f"To: leads@foundry.example\r\n"
        f"Subject: Enquiry number {serial}\r\n"
        f"Date: Fri, 27 Nov 2026 10:{serial % 60:02d}:00 +0000\r\n"
        f"Message-ID: <unrouted-{serial}@newbroker.example>\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"Name: Client {serial}\r\nEmail: client{serial}@company.example\r\nDesks: 4\r\n"
    ).encode()


@dataclass(frozen=True)
class Enquiry:
    """A distinct enquiry: one template, its own reference, address and Message-ID."""

    template: Template
    serial: int
    ref: str
    message_id: str
    raw: bytes

    @property
    def intake_key(self) -> str:
        return message_id_key(self.message_id)

    @property
    def opportunity(self) -> str:
        """The Name tag of the Nexudus opportunity it must become."""
        return f"{LABELS[self.template.channel]} {self.ref}"


def enquiry(template: Template, serial: int) -> Enquiry:
    assert template.ref is not None, template.key
    ref = new_ref(template.ref, serial)
    replacements = {template.ref: ref}
    if template.email:
        replacements[template.email] = new_email(template.email, serial)
    message_id = f"<enquiry-{serial}@variants.leadrelay.test>"
    raw = vary(template.raw(), replacements, message_id=message_id, minutes=serial)
    return Enquiry(template, serial, ref, message_id, raw)


def enquiries(count: int, *, first: int = 0) -> list[Enquiry]:
    """``count`` distinct enquiries, cycling through every portal's lead mails.

    Mails whose client left no e-mail address are left out: Nexudus cannot make a
    Coworker of them (a validation dead letter, tested in tests/delivery).
    """
    leads = [t for t in templates() if t.lead and t.email]
    return [enquiry(leads[serial % len(leads)], serial) for serial in range(first, first + count)]
