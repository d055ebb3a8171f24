"""Mails that hold several leads, for the tests and the fixtures: portal digests, brokers' tables.

``people(n)`` makes n distinct clients; the builders lay them out the way the
portals' digests and brokers' spreadsheets do (tests/inbox/test_several_leads.py,
the fixtures under ``adapters/*/fixtures/variations/``).
"""

from __future__ import annotations

import csv
import io
import quopri
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP

_FIRST = ("Amara", "Jonas", "Sofia", "Kwame", "Hannah", "Ravi", "Lucia", "Tomasz", "Ines", "Oliver")
_LAST = ("Okafor", "Becker", "Marin", "Mensah", "Lindqvist", "Patel", "Moreau", "Nowak", "Costa", "Hughes")
_FIRMS = (
    "Brightlane",
    "Nordlicht",
    "Marin & Co",
    "Tallow",
    "Fjord",
    "Kestrel",
    "Saffron",
    "Quarry",
    "Tidewell",
)


@dataclass(frozen=True)
class Person:
    serial: int
    name: str
    company: str
    email: str
    phone: str
    desks: int
    budget: int  # GBP a month
    ref: str  # the portal's reference

    @property
    def first(self) -> str:
        return self.name.split()[0]

    @property
    def last(self) -> str:
        return self.name.split()[-1]


def people(count: int, *, start: int = 0) -> list[Person]:
    found = []
    for serial in range(start, start + count):
        first, last = _FIRST[serial % len(_FIRST)], _LAST[(serial // len(_FIRST)) % len(_LAST)]
        firm = f"{_FIRMS[serial % len(_FIRMS)]} {serial}"
        handle = f"{first}.{last}{serial}".lower()
        found.append(
            Person(
                serial=serial,
                name=f"{first} {last}",
                company=firm,
                email=f"{handle}@client{serial % 7}.example",
                phone=f"07700 9{serial % 100000:05d}",
                desks=4 + serial % 20,
                budget=2000 + 250 * (serial % 30),
                ref=f"enq_D{serial:07d}",
            )
        )
    return found


def _qp(headers: str, body: str) -> bytes:
    encoded = quopri.encodestring(body.encode("utf-8")).decode("ascii")
    return (
        headers
        + 'Content-Type: text/plain; charset="utf-8"\nContent-Transfer-Encoding: quoted-printable\n'
        + "MIME-Version: 1.0\n\n"
        + encoded
    ).encode("ascii")


def hubble_digest(clients: list[Person], *, message_id: str, without_contact: int | None = None) -> bytes:
    """Hubble's daily digest: "Enquiry i of n" blocks between rules; ``without_contact``: one without."""
    blocks = []
    for i, p in enumerate(clients, start=1):
        lines = [f"Enquiry {i} of {len(clients)}", "", f"Name: {p.name}", f"Company: {p.company}"]
        if i != without_contact:
            lines += [f"Email: {p.email}", f"Phone: {p.phone}"]
        lines += [
            f"Desks: {p.desks}",
            f"Budget: £{p.budget:,} per month",
            "Listing: The Foundry, Old Street (#48213)",
            f"Reference: {p.ref}",
        ]
        blocks.append("\n".join(lines))
    rule = "\n\n" + "-" * 60 + "\n\n"
    body = (
        f"Hi Foundry team,\n\nYou have {len(clients)} new enquiries from Hubble today.{rule}"
        + rule.join(blocks)
        + rule
        + "Please reply to each client within 2 working hours.\nThe Hubble team\n"
        + "Manage your notification settings: https://hubblehq.com/account/notifications\n"
    )
    headers = (
        "From: Hubble <enquiries@hubblehq.com>\nTo: leads@foundry-workspace.example\n"
        f"Subject: You have {len(clients)} new enquiries on Hubble\n"
        f"Date: Mon, 30 Nov 2026 07:00:12 +0000\nMessage-ID: {message_id}\n"
    )
    return _qp(headers, body)


BROKER_COLUMNS = (
    "First name",
    "Surname",
    "Company",
    "E-mail",
    "Mobile",
    "Desks",
    "Budget (£/month)",
    "Notes",
)


def _cells(p: Person) -> list[str]:
    return [p.first, p.last, p.company, p.email, p.phone, str(p.desks), str(p.budget), "Wants a meeting room"]


def broker_csv(clients: list[Person], *, delimiter: str = ",") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(BROKER_COLUMNS)
    writer.writerows(_cells(p) for p in clients)
    return out.getvalue().encode("utf-8-sig")


def broker_xlsx(clients: list[Person]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Leads from Northbridge Property Partners"])
    sheet.append(list(BROKER_COLUMNS))
    for p in clients:
        sheet.append(
            [p.first, p.last, p.company, p.email, p.phone, p.desks, p.budget, "Wants a meeting room"]
        )
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def broker_mail(
    attachments: list[tuple[str, str, bytes]],
    *,
    message_id: str,
    sender: str = "Priya Nair <priya@northbridge-brokers.example>",
    subject: str = "Leads for The Foundry - this week",
) -> bytes:
    """A broker's mail: a line of text and the attached files (name, MIME type, bytes)."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "leads@foundry-workspace.example"
    msg["Subject"] = subject
    msg["Date"] = "Mon, 30 Nov 2026 09:12:44 +0000"
    msg["Message-ID"] = message_id
    msg.set_content(
        "Hi all,\n\nPlease find this week's leads attached.\n\nBest,\nPriya\nNorthbridge Property Partners\n"
    )
    for name, ctype, data in attachments:
        main, _, sub = ctype.partition("/")
        msg.add_attachment(data, maintype=main, subtype=sub, filename=name)
    return msg.as_bytes(policy=SMTP)


BROKER_CHANNEL = {
    "lead_source": 11,
    "adapter": "configurable",
    "label": "Northbridge",
    "parse": {
        "senders": ["northbridge-brokers.example"],
        "attachments": {
            "columns": {
                "contact.first_name": ["First name"],
                "contact.last_name": ["Surname"],
                "contact.email": ["E-mail", "Email"],
                "contact.phone": ["Mobile"],
                "requirements.desks": ["Desks"],
                "requirements.budget": ["Budget (£/month)"],
                "message": ["Notes"],
            },
        },
    },
}
