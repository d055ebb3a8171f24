"""One mail, several leads: digests cut into blocks, CSV/XLSX tables read within caps (pure)."""

from __future__ import annotations

import io
import re
import zipfile

import pytest

from leadrelay.adapters import ParseError, RawItem
from leadrelay.adapters.digest import digest_blocks
from leadrelay.adapters.from_email import exact_field
from leadrelay.adapters.from_row import ROW_CONTENT_TYPE
from leadrelay.adapters.pieces import split_item
from leadrelay.adapters.tables import MAX_ROWS, TableError, read_table
from leadrelay.adapters.tables.delimited import delimiter_of
from leadrelay.testing.several import (
    BROKER_COLUMNS,
    broker_csv,
    broker_mail,
    broker_xlsx,
    hubble_digest,
    people,
)
from tests.adapters.support import context
from tests.conftest import routing_with

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _hubble_field(label: str) -> str | None:
    _, adapter = context("hubblehq")
    return exact_field(adapter.spec, label)  # type: ignore[attr-defined]


def _broker():  # type: ignore[no-untyped-def]
    from leadrelay.testing.several import BROKER_CHANNEL

    return context("northbridge", routing_with(channels={"northbridge": BROKER_CHANNEL}))


def test_a_notification_whose_rules_separate_sections_is_not_a_digest() -> None:
    text = (
        "Client\nName: Amara Okafor\nCompany: Brightlane Ltd\n\n-----------\n\n"
        "How to reach them\nEmail: amara@brightlane.example\nPhone: 07700 900123\n"
    )
    assert digest_blocks(text, _hubble_field) == []


def test_a_consultants_section_under_a_rule_is_not_a_second_lead() -> None:
    text = (
        "Name: Amara Okafor\nCompany: Brightlane Ltd\nEmail: amara@brightlane.example\nPhone: 07700 900123\n"
        "Desks: 12\nBudget: £6,500 per month\n\n----------\n\nYour consultant\nName: Tom Reeves\n"
        "Email: tom.reeves@hubblehq.com\n"
    )
    assert digest_blocks(text, _hubble_field) == []


def test_a_digest_is_cut_at_rules_headings_or_a_configured_separator() -> None:
    block = "Name: {n}\nEmail: {n}@x.example\nDesks: 4"
    ruled = "Hello\n=====\n" + "\n=====\n".join(block.format(n=n) for n in "abc") + "\n=====\nBye"
    assert len(digest_blocks(ruled, _hubble_field)) == 3
    headed = "\n".join(f"Lead #{i}\n" + block.format(n=n) for i, n in enumerate("ab", 1))
    assert [b.splitlines()[0] for b in digest_blocks(headed, _hubble_field)] == ["Lead #1", "Lead #2"]
    custom = "\n".join(f">>> {n}\n" + block.format(n=n) for n in "ab")

    assert len(digest_blocks(custom, _hubble_field, re.compile(r"^>>>"))) == 2


def test_csv_delimiter_and_encoding_are_found() -> None:
    assert delimiter_of('Name;"Email, work";Phone') == ";"
    assert delimiter_of("Name\tEmail\tPhone") == "\t"
    assert delimiter_of("Name") == ","
    data = "Name;E-mail\r\nZoë;zoe@x.example\r\n".encode("cp1252")
    table = read_table("leads.csv", "text/csv", data)
    assert table.headers == ("Name", "E-mail")
    assert table.rows[0].cells == ("Zoë", "zoe@x.example")
    assert table.rows[0].number == 2
    bom = "\ufeffName,Email\nA,a@x.example\n".encode()
    assert read_table("leads.csv", "text/csv", bom).headers == ("Name", "Email")


def test_tables_over_their_caps_are_refused_with_a_reason() -> None:
    rows = "Email\n" + "a@x.example\n" * (MAX_ROWS + 1)
    with pytest.raises(TableError, match="over 5,000 rows"):
        read_table("big.csv", "text/csv", rows.encode())
    with pytest.raises(TableError, match="byte limit"):
        read_table("huge.csv", "text/csv", b"Email\n" + b"a" * (6 * 1024 * 1024))
    with pytest.raises(TableError, match="binary"):
        read_table("x.csv", "text/csv", b"\x00\x01PK")


def test_an_xlsx_that_would_unpack_too_far_is_not_opened() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (60 * 1024 * 1024))
    bomb = out.getvalue()
    assert len(bomb) < 200_000
    with pytest.raises(TableError, match="would unpack to"):
        read_table("bomb.xlsx", XLSX, bomb)
    with pytest.raises(TableError, match="not an XLSX"):
        read_table("fake.xlsx", XLSX, b"Email\na@x.example\n")


def test_an_xlsx_reads_its_first_sheet_below_the_header_row() -> None:
    table = read_table("leads.xlsx", XLSX, broker_xlsx(people(2)), header_row=2)
    assert table.headers == BROKER_COLUMNS
    assert [r.number for r in table.rows] == [3, 4]
    assert table.rows[0].cells[5] == "4"  # a whole number without ".0"


def test_a_mail_with_only_a_pdf_is_one_lead_and_lists_the_pdf() -> None:
    ctx, adapter = context("hubblehq")
    raw = broker_mail([("brochure.pdf", "application/pdf", b"%PDF-1.4")], message_id="<p@x.example>")
    split = split_item(adapter, raw, ctx.limits)
    assert split.kind is None
    assert [a.described() for a in split.attachments] == [
        {"name": "brochure.pdf", "type": "application/pdf", "bytes": 8}
    ]


def test_each_row_is_a_lead_and_a_bad_row_names_its_row_and_column_never_its_value() -> None:
    ctx, adapter = _broker()
    clients = people(3)
    csv_data = (
        broker_csv(clients)
        .replace(clients[1].email.encode(), b"jane at example")
        .replace(clients[1].phone.encode(), b"")
    )
    split = split_item(
        adapter, broker_mail([("leads.csv", "text/csv", csv_data)], message_id="<c@x>"), ctx.limits
    )
    assert split.kind == "table"
    assert [p.part for p in split.pieces] == ["leads.csv row 2", "leads.csv row 3", "leads.csv row 4"]
    assert {p.content_type for p in split.pieces} == {ROW_CONTENT_TYPE}
    leads = adapter.parse(RawItem("email", split.pieces[0].body, ROW_CONTENT_TYPE), ctx)
    assert (leads.contact.email, leads.contact.full_name) == (clients[0].email, clients[0].name)
    assert leads.requirements.desks is not None and leads.requirements.desks.min == clients[0].desks
    with pytest.raises(ParseError) as bad:
        adapter.parse(RawItem("email", split.pieces[1].body, ROW_CONTENT_TYPE), ctx)
    assert "leads.csv row 3: column 'E-mail' (contact.email) does not hold an e-mail address" in str(
        bad.value
    )
    assert "jane" not in str(bad.value)


def test_the_same_row_has_the_same_key_whatever_mail_or_file_name_brings_it() -> None:
    ctx, adapter = _broker()
    data = broker_csv(people(2))
    first = split_item(adapter, broker_mail([("a.csv", "text/csv", data)], message_id="<1@x>"), ctx.limits)
    again = split_item(
        adapter, broker_mail([("a (1).csv", "text/csv", data)], message_id="<2@x>"), ctx.limits
    )
    assert [p.key for p in first.pieces] == [p.key for p in again.pieces]
    assert all(p.by_content for p in first.pieces)


def test_a_digest_block_is_a_mail_of_its_own_without_the_digests_message_id() -> None:
    ctx, adapter = context("hubblehq")
    split = split_item(adapter, hubble_digest(people(2), message_id="<d@mail.hubblehq.com>"), ctx.limits)
    assert split.kind == "digest"
    assert [p.key for p in split.pieces] == ["lead-1", "lead-2"]
    assert all(b"Message-ID" not in p.body and b"X-LeadRelay-Part" in p.body for p in split.pieces)


def test_a_configured_separator_cuts_a_digest_the_default_rules_miss() -> None:
    channel = {
        "lead_source": 20,
        "adapter": "configurable",
        "parse": {"senders": ["spacepool.example"], "digest": {"separator": r"^\s*>>> Enquirer \d+"}},
    }
    ctx, adapter = context("spacepool", routing_with(channels={"spacepool": channel}))
    blocks = [f">>> Enquirer {i}\nName: P{i}\nEmail: p{i}@x.example\nDesks: {i + 2}" for i in (1, 2, 3)]
    raw = (
        "From: SpacePool <alerts@spacepool.example>\nTo: leads@foundry.example\nSubject: Today's enquiries\n"
        "Message-ID: <sp-digest@spacepool.example>\nContent-Type: text/plain; charset=utf-8\n\n"
        "Today on SpacePool:\n" + "\n".join(blocks) + "\n"
    ).encode()
    split = split_item(adapter, raw, ctx.limits)
    assert split.kind == "digest"
    emails = [
        adapter.parse(RawItem("email", p.body, p.content_type), ctx).contact.email for p in split.pieces
    ]
    assert emails == ["p1@x.example", "p2@x.example", "p3@x.example"]


@pytest.mark.parametrize(
    ("parse", "says"),
    [
        ({"digest": {"separator": "(a+)+"}}, "repeats a repetition"),
        ({"digest": {"separator": "("}}, "is not a regular expression"),
        ({"attachments": {"columns": {"contact.mail": "Email"}}}, "unknown field contact.mail"),
        ({"attachments": {"header_row": 0}}, "greater than or equal to 1"),
    ],
)
def test_the_digest_and_attachments_settings_are_checked_when_the_routing_is_read(
    parse: dict, says: str
) -> None:
    from leadrelay.routing import RoutingError

    with pytest.raises(RoutingError, match=re.escape(says)):
        routing_with(channels={"spacepool": {"lead_source": 20, "adapter": "configurable", "parse": parse}})
