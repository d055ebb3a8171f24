"""The shared value parsers, by tables of what people write and what it means."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from leadrelay.adapters.parsing.dates import parse_date, parse_datetime
from leadrelay.adapters.parsing.figures import to_number
from leadrelay.adapters.parsing.labels import LabelTable
from leadrelay.adapters.parsing.money import Money, parse_money
from leadrelay.adapters.parsing.quantities import parse_area_sqm, parse_count_range, parse_term_months
from leadrelay.adapters.parsing.synonyms import ENGLISH, GERMAN
from leadrelay.adapters.parsing.text import split_listing, split_person, workspace_type

EST = timezone(timedelta(hours=-5))


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("4,000", 4000),
        ("2.500", 2500),
        ("1.200,50", 1200.5),
        ("1,200.50", 1200.5),
        ("6.5", 6.5),
        ("4,80", 4.8),
        ("1.234.567", 1234567),
        ("0.500", 0.5),
        ("1'200", 1200),
        ("12", 12),
    ],
)
def test_numbers_guess_the_decimal_mark(text: str, value: float) -> None:
    assert to_number(text) == value


@pytest.mark.parametrize(
    ("text", "money"),
    [
        ("£6.5k", Money(6500, 6500, "GBP", None)),
        ("£4,000 - £6,000 pcm", Money(4000, 6000, "GBP", "month")),
        ("2.500 €", Money(2500, 2500, "EUR", None)),
        ("$4,800/month", Money(4800, 4800, "USD", "month")),
        ("€2,500 per month", Money(2500, 2500, "EUR", "month")),
        ("1.200,50 EUR", Money(1200.5, 1200.5, "EUR", None)),
        ("up to £6,000 pcm", Money(None, 6000, "GBP", "month")),
        ("from £4,000", Money(4000, None, "GBP", None)),
        ("£6-8k", Money(6000, 8000, "GBP", None)),
        ("£150,000 per annum", Money(150000, 150000, "GBP", "year")),
        ("USD 3,000", Money(3000, 3000, "USD", None)),
        ("$4.5k/mo", Money(4500, 4500, "USD", "month")),
        ("bis 1.500 € / Monat", Money(None, 1500, "EUR", "month")),
        ("£500 per week", Money(500, 500, "GBP", "week")),
        ("4800.0", Money(4800, 4800, None, None)),
    ],
)
def test_money(text: str, money: Money) -> None:
    assert parse_money(text) == money


@pytest.mark.parametrize("text", ["", "negotiable", "tbc", "£"])
def test_money_without_an_amount_is_none(text: str) -> None:
    assert parse_money(text) is None


def test_money_takes_the_channel_currency_when_none_is_written() -> None:
    assert parse_money("4800", default_currency="USD") == Money(4800, 4800, "USD", None)


@pytest.mark.parametrize(
    ("text", "bounds"),
    [
        ("10-15", (10, 15)),
        ("10 – 15", (10, 15)),
        ("approx 20", (20, 20)),
        ("6 people", (6, 6)),
        ("up to 8", (None, 8)),
        ("10 to 15", (10, 15)),
        ("between 10 and 15", (10, 15)),
        ("10+", (10, None)),
        ("ca. 20", (20, 20)),
        ("10 bis 12", (10, 12)),
        ("4–6 Arbeitsplätze", (4, 6)),
        ("six people", (6, 6)),
        ("a team of 5", (5, 5)),
        ("12", (12, 12)),
        ("min 4", (4, None)),
    ],
)
def test_desks(text: str, bounds: tuple[int | None, int | None]) -> None:
    assert parse_count_range(text) == bounds


@pytest.mark.parametrize("text", ["", "flexible", "tbc"])
def test_desks_without_a_number_is_none(text: str) -> None:
    assert parse_count_range(text) is None


@pytest.mark.parametrize(
    ("text", "months"),
    [
        ("12 months", 12),
        ("2 years", 24),
        ("24 Monate", 24),
        ("1 Jahr", 12),
        ("6 mo", 6),
        ("2 yrs", 24),
        ("18m", 18),
        ("one year", 12),
        ("52 weeks", 12),
        ("12", 12),
        ("2 Jahre", 24),
        ("3 mths", 3),
        ("6 Monaten", 6),
    ],
)
def test_terms(text: str, months: int) -> None:
    assert parse_term_months(text) == months


@pytest.mark.parametrize("text", ["", "flexible", "rolling"])
def test_term_without_a_number_is_none(text: str) -> None:
    assert parse_term_months(text) is None


@pytest.mark.parametrize(
    ("text", "sqm"), [("120 m²", 120), ("85 qm", 85), ("1,200 sq ft", 111.5), ("60", 60), ("45 sqm", 45)]
)
def test_areas(text: str, sqm: float) -> None:
    assert parse_area_sqm(text) == sqm


@pytest.mark.parametrize(
    ("text", "dayfirst", "day"),
    [
        ("27/11/2026", True, date(2026, 11, 27)),
        ("01.02.2027", True, date(2027, 2, 1)),
        ("12/03/2026", True, date(2026, 3, 12)),
        ("12/03/2026", False, date(2026, 12, 3)),
        ("13/03/2026", False, date(2026, 3, 13)),
        ("January 2027", True, date(2027, 1, 1)),
        ("15 January 2027", True, date(2027, 1, 15)),
        ("15th of January 2027", True, date(2027, 1, 15)),
        ("Jan 15, 2027", False, date(2027, 1, 15)),
        ("1. Februar 2027", True, date(2027, 2, 1)),
        ("März 2027", True, date(2027, 3, 1)),
        ("Q2 2027", True, date(2027, 4, 1)),
        ("2027-01-15", True, date(2027, 1, 15)),
        ("2027-02-01T00:00:00Z", True, date(2027, 2, 1)),
        ("27/11/26", True, date(2026, 11, 27)),
    ],
)
def test_dates(text: str, dayfirst: bool, day: date) -> None:
    assert parse_date(text, dayfirst=dayfirst) == day


@pytest.mark.parametrize("text", ["ASAP", "flexible", "", "31/02/2027", "sofort"])
def test_no_date_is_invented(text: str) -> None:
    assert parse_date(text) is None


@pytest.mark.parametrize(
    ("text", "dayfirst", "moment"),
    [
        ("27/11/2026 16:45", True, datetime(2026, 11, 27, 16, 45)),
        ("Wednesday 2 December 2026, 10:30", True, datetime(2026, 12, 2, 10, 30)),
        ("Tue, Dec 1, 2026 at 11:00 AM EST", False, datetime(2026, 12, 1, 11, 0, tzinfo=EST)),
        ("12/03/2026 2:00 PM", False, datetime(2026, 12, 3, 14, 0)),
        ("2026-11-27T14:02:11-05:00", False, datetime(2026, 11, 27, 14, 2, 11, tzinfo=EST)),
        ("02.12.2026 um 10:30 Uhr", True, datetime(2026, 12, 2, 10, 30)),
        ("15 January 2027", True, datetime(2027, 1, 15)),
    ],
)
def test_datetimes(text: str, dayfirst: bool, moment: datetime) -> None:
    assert parse_datetime(text, dayfirst=dayfirst) == moment


LABELS = LabelTable(ENGLISH).extended(GERMAN)


@pytest.mark.parametrize(
    ("label", "field"),
    [
        ("Full name", "contact.full_name"),
        ("Your name", "contact.full_name"),
        ("Ihr Name", "contact.full_name"),
        ("E-mail", "contact.email"),
        ("Email address", "contact.email"),
        ("E-Mail-Adresse", "contact.email"),
        ("Mobile", "contact.phone"),
        ("Telefonnummer", "contact.phone"),
        ("Phone (mobile)", "contact.phone"),
        ("Team size", "requirements.desks"),
        ("No. of desks", "requirements.desks"),
        ("Anzahl Arbeitsplätze", "requirements.desks"),
        ("Monthly budget", "requirements.budget"),
        ("Budget (EUR/Monat)", "requirements.budget"),
        ("Start date", "requirements.start_date"),
        ("Move in", "requirements.start_date"),
        ("Mietbeginn", "requirements.start_date"),
        ("Contract term", "requirements.term_months"),
        ("Laufzeit", "requirements.term_months"),
        ("Company name", "contact.company"),
        ("Consultant email", "broker.email"),
        ("Consultant", "broker"),
        ("Listing name", "listing.name"),
        ("Listing ID", "listing.id"),
        ("Property", "listing"),
        ("Lead reference", "external_id"),
        ("Anfrage-ID", "external_id"),
        ("Comments", "message"),
        ("Preferred viewing", "viewing_at"),
        ("How many desks", "requirements.desks"),
    ],
)
def test_labels_by_meaning(label: str, field: str) -> None:
    match = LABELS.match(label)
    assert match is not None and match.field == field


@pytest.mark.parametrize("label", ["Hi Foundry team", "Please reply within 2 hours", "", "12345"])
def test_text_that_is_no_label(label: str) -> None:
    assert LABELS.match(label) is None


def test_custom_labels_win_over_the_vocabulary() -> None:
    table = LABELS.extended({"requirements.desks": ["Company size"]}, custom=True)
    assert table.match("Company size").field == "requirements.desks"  # type: ignore[union-attr]


def test_person_and_listing_phrases_split_into_parts() -> None:
    person = split_person("Hannah Cole, Savills Workthere (hannah.cole@workthere.com)")
    assert (person.name, person.organisation, person.email) == (
        "Hannah Cole",
        "Savills Workthere",
        "hannah.cole@workthere.com",
    )
    listing = split_listing("The Foundry, Old Street (#48213)")
    assert (listing.id, listing.name) == ("48213", "The Foundry, Old Street")
    address = split_listing("1 Canada Square, London E14 5AB (P-2231)")
    assert (address.id, address.address) == ("P-2231", "1 Canada Square, London E14 5AB")
    assert split_listing("sp_10442").id == "sp_10442"


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Private office", "private_office"),
        ("TeamOffice", "team_office"),
        ("Team Room 4 (Team office)", "team_office"),
        ("Hot-desking", "hot_desk"),
        ("DedicatedDesk", "dedicated_desk"),
        ("Einzelbüro", "private_office"),
        ("Lab space", "lab_space"),
    ],
)
def test_workspace_types_are_snake_case(text: str, kind: str) -> None:
    assert workspace_type(text) == kind
