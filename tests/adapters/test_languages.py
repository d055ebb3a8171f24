"""French, Dutch, Spanish and German wording, charsets and budgets: the value parsers one by one.

The partner fixtures (``adapters/<channel>/fixtures/variations/email-french-…``)
show whole notifications; these pin each rule they rest on, so a change to one
parser names the wording it broke.
"""

from __future__ import annotations

import base64
from datetime import date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadrelay.adapters import RawItem
from leadrelay.adapters.mail.message import read_mail
from leadrelay.adapters.parsing.dates import parse_date, parse_datetime
from leadrelay.adapters.parsing.languages import multilingual, region_of_labels
from leadrelay.adapters.parsing.money import parse_money
from leadrelay.adapters.parsing.quantities import parse_count_range, parse_term_months
from leadrelay.adapters.parsing.text import kind_in, phone_in, workspace_type
from leadrelay.canonical import LeadKind, normalise_phone
from leadrelay.routing.loading import parse_routing_text
from tests.adapters.support import context

LABELS = multilingual()


@pytest.mark.parametrize(
    ("label", "field"),
    [
        ("Nombre de postes", "requirements.desks"),
        ("Postes de travail", "requirements.desks"),
        ("Nombre de personnes", "requirements.desks"),
        ("Aantal werkplekken", "requirements.desks"),
        ("Número de puestos", "requirements.desks"),
        ("Personas", "requirements.desks"),
        ("Arbeitsplätze", "requirements.desks"),
        ("Adresse e-mail", "contact.email"),
        ("Courriel", "contact.email"),
        ("E-mailadres", "contact.email"),
        ("Correo electrónico", "contact.email"),
        ("Téléphone portable", "contact.phone"),
        ("Telefoonnummer", "contact.phone"),
        ("Teléfono", "contact.phone"),
        ("Société", "contact.company"),
        ("Bedrijfsnaam", "contact.company"),
        ("Empresa", "contact.company"),
        ("Nom", "contact.full_name"),
        ("Naam", "contact.full_name"),
        ("Nombre y apellidos", "contact.full_name"),
        ("Prénom", "contact.first_name"),
        ("Achternaam", "contact.last_name"),
        ("Loyer mensuel", "requirements.budget"),
        ("Huurprijs", "requirements.budget"),
        ("Presupuesto", "requirements.budget"),
        ("Date d'emménagement", "requirements.start_date"),
        ("Gewenste startdatum", "requirements.start_date"),
        ("Fecha de incorporación", "requirements.start_date"),
        ("Durée d'engagement", "requirements.term_months"),
        ("Looptijd", "requirements.term_months"),
        ("Duración del contrato", "requirements.term_months"),
        ("Type de bureau", "requirements.workspace_type"),
        ("Tipo de espacio", "requirements.workspace_type"),
        ("Visite souhaitée", "viewing_at"),
        ("Bezichtiging", "viewing_at"),
        ("Votre chargé de compte", "broker"),
        ("Référence", "external_id"),
        ("Aanvraagnummer", "external_id"),
        # a name that is not the client's
        ("Nom de l'espace", "listing.name"),
        ("Nom du conseiller", "broker.contact"),
        ("Naam locatie", "listing.name"),
        ("Nombre del asesor", "broker.contact"),
        ("Nombre del centro", "listing.name"),
        ("GSM", "contact.phone"),
        # English keeps its meaning where a word is shared
        ("Email", "contact.email"),
        ("Name", "contact.full_name"),
        ("Budget", "requirements.budget"),
    ],
)
def test_labels_in_every_language_name_their_field(label: str, field: str) -> None:
    found = LABELS.match(label)
    assert found is not None and found.field == field


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1. Februar 2027", date(2027, 2, 1)),
        ("1er février 2027", date(2027, 2, 1)),
        ("le 1er fevrier 2027", date(2027, 2, 1)),
        ("1 februari 2027", date(2027, 2, 1)),
        ("1e februari 2027", date(2027, 2, 1)),
        ("1 de febrero de 2027", date(2027, 2, 1)),
        ("1º de marzo de 2027", date(2027, 3, 1)),
        ("01.02.2027", date(2027, 2, 1)),
        ("1/2/2027", date(2027, 2, 1)),
        ("01-02-2027", date(2027, 2, 1)),
        ("mars 2027", date(2027, 3, 1)),
        ("febrero de 2027", date(2027, 2, 1)),
        ("15 mei 2027", date(2027, 5, 15)),
        ("3 août 2027", date(2027, 8, 3)),
        ("2 déc. 2027", date(2027, 12, 2)),
        ("15 diciembre 2027", date(2027, 12, 15)),
        ("dès que possible", None),
    ],
)
def test_dates_in_every_language_read_day_first(text: str, expected: date | None) -> None:
    assert parse_date(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mardi 2 mars 2027 à 10h30", datetime(2027, 3, 2, 10, 30)),
        ("dinsdag 2 maart 2027 om 14:00 uur", datetime(2027, 3, 2, 14, 0)),
        ("2 de marzo de 2027 a las 9:15", datetime(2027, 3, 2, 9, 15)),
        ("2. März 2027 um 16:45 Uhr", datetime(2027, 3, 2, 16, 45)),
    ],
)
def test_a_time_after_a_localized_date_is_kept(text: str, expected: datetime) -> None:
    assert parse_datetime(text) == expected


@pytest.mark.parametrize(
    ("text", "low", "high", "currency", "period"),
    [
        ("EUR 4.200,00 monatlich", 4200, 4200, "EUR", "month"),
        ("4.200,00 € pro Monat", 4200, 4200, "EUR", "month"),
        ("4 500 € HT par mois", 4500, 4500, "EUR", "month"),
        ("4\u202f500,50 € / mois", 4500.5, 4500.5, "EUR", "month"),
        ("de 2 000 à 3 000 € par mois", 2000, 3000, "EUR", "month"),
        ("€ 6.250,00 per maand", 6250, 6250, "EUR", "month"),
        ("tussen € 2.500 en € 3.000 p/m", 2500, 3000, "EUR", "month"),
        ("entre 2.000 y 3.000 € al mes", 2000, 3000, "EUR", "month"),
        ("1.800 €/mes", 1800, 1800, "EUR", "month"),
        ("£5k–£6.5k pcm", 5000, 6500, "GBP", "month"),
        ("£5,000 p/m", 5000, 5000, "GBP", "month"),
        ("£4,500 p.c.m.", 4500, 4500, "GBP", "month"),
        ("$120k per year", 120_000, 120_000, "USD", "year"),
        ("$120k p.a.", 120_000, 120_000, "USD", "year"),
        ("€ 48.000 par an", 48_000, 48_000, "EUR", "year"),
        ("24.000 € al año", 24_000, 24_000, "EUR", "year"),
        ("$450 per week", 450, 450, "USD", "week"),
        ("jusqu'à 4 000 €", None, 4000, "EUR", None),
        ("hasta 3.500 €", None, 3500, "EUR", None),
        ("max. € 4.000", None, 4000, "EUR", None),
        # short words of one language are not periods in another
        ("an estimate of £5,000 per month", 5000, 5000, "GBP", "month"),
        ("4.500 € pour mes bureaux", 4500, 4500, "EUR", None),
    ],
)
def test_budgets_with_decimal_commas_space_thousands_and_periods(
    text: str, low: float | None, high: float, currency: str, period: str | None
) -> None:
    money = parse_money(text)
    assert money is not None
    assert (money.min, money.max, money.currency, money.period) == (low, high, currency, period)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("between 8 and 10 desks", (8, 10)),
        ("8–10 people", (8, 10)),
        ("8-10", (8, 10)),
        ("up to 15", (None, 15)),
        ("max. 15", (None, 15)),
        ("bis zu 15", (None, 15)),
        ("jusqu'à 15 postes", (None, 15)),
        ("jusqu’à 15 postes", (None, 15)),
        ("entre 8 et 10 postes", (8, 10)),
        ("8 à 10 personnes", (8, 10)),
        ("van 8 tot 10 werkplekken", (8, 10)),
        ("tot 15 personen", (None, 15)),
        ("maximaal 12", (None, 12)),
        ("entre 8 y 10 puestos", (8, 10)),
        ("hasta 15 personas", (None, 15)),
        ("à partir de 6 postes", (6, None)),
        ("vanaf 6", (6, None)),
        ("al menos 6", (6, None)),
        ("dix postes", (10, 10)),
        ("tien werkplekken", (10, 10)),
        ("diez puestos", (10, 10)),
        ("8 10", (8, 8)),  # two numbers, not a space-grouped 810
    ],
)
def test_desk_ranges_and_caps_in_every_language(text: str, expected: tuple[int | None, int | None]) -> None:
    assert parse_count_range(text) == expected


@pytest.mark.parametrize(
    ("text", "months"),
    [
        ("12 mois", 12),
        ("2 ans", 24),
        ("un an", 12),
        ("24 maanden", 24),
        ("1 jaar", 12),
        ("een jaar", 12),
        ("12 meses", 12),
        ("2 años", 24),
        ("un año", 12),
        ("ein Jahr", 12),
    ],
)
def test_terms_in_every_language(text: str, months: int) -> None:
    assert parse_term_months(text) == months


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Bureau privé", "private_office"),
        ("Poste fixe", "dedicated_desk"),
        ("Flexplek", "hot_desk"),
        ("Privé kantoor", "private_office"),
        ("Oficina privada", "private_office"),
        ("Puesto flexible", "hot_desk"),
        ("Sala de reuniones", "meeting_room"),
        ("Teambüro", "team_office"),
    ],
)
def test_workspace_types_in_every_language(text: str, kind: str) -> None:
    assert workspace_type(text) == kind


@pytest.mark.parametrize(
    ("subject", "kind"),
    [
        ("Nouvelle demande via Hubble", LeadKind.enquiry),
        ("Demande de visite : Le Comptoir", LeadKind.viewing_request),
        ("Nieuwe aanvraag via Kontor", LeadKind.enquiry),
        ("Rondleiding aangevraagd", LeadKind.tour_request),
        ("Nueva solicitud Workthere", LeadKind.enquiry),
        ("Solicitud de visita", LeadKind.viewing_request),
    ],
)
def test_the_kind_of_request_in_localized_subjects(subject: str, kind: LeadKind) -> None:
    assert kind_in(subject) == kind


@pytest.mark.parametrize(
    ("text", "region", "expected"),
    [
        ("+44 (0)20 7946 0000", "GB", "+442079460000"),
        ("+44 (0) 20 7946 0000 ext. 12", "GB", "+442079460000"),
        ("020 7946 0000 x12", "GB", "+442079460000"),
        ("0049 30 1234567", "GB", "+49301234567"),
        ("0049 (0)30 1234567", "US", "+49301234567"),
        ("+49 30 1234567 Durchwahl 12", "DE", "+49301234567"),
        ("0033 6 98 76 54 32", "US", "+33698765432"),
        ("+33 (0)6 12 34 56 78 poste 204", "FR", "+33612345678"),
        ("0031 6 12345678", "US", "+31612345678"),
        ("0034 912 345 678", "GB", "+34912345678"),
    ],
)
def test_phones_with_a_trunk_zero_an_extension_or_a_00_prefix(text: str, region: str, expected: str) -> None:
    found = phone_in(text)
    assert found is not None
    assert normalise_phone(found, region) == expected


@pytest.mark.parametrize(
    ("labels", "region"),
    [
        (["Nom", "Société", "Téléphone portable", "Budget"], "FR"),
        (["Naam", "Bedrijfsnaam", "Telefoonnummer"], "NL"),
        (["Nombre", "Empresa", "Teléfono"], "ES"),
        (["Vorname", "Firma", "Telefon"], "DE"),
        (["Name", "Company", "Phone", "Budget"], None),  # English: the channel's country stands
        (["Société", "Name", "Phone"], None),  # one foreign label is no language
    ],
)
def test_the_language_of_the_labels_points_to_a_country(labels: list[str], region: str | None) -> None:
    assert region_of_labels(labels) == region


@pytest.mark.parametrize(
    ("text", "region", "language_region", "expected"),
    [
        ("06 12 34 56 78", "GB", "FR", "+33612345678"),  # invalid in GB, a French mobile
        ("612 345 678", "GB", "ES", "+34612345678"),
        ("020 7946 0000", "GB", "FR", "+442079460000"),  # valid in GB: the listing's country stands
        ("+44 7700 900123", "GB", "FR", "+447700900123"),  # international: no hint needed
        ("06 12 34 56 78", "GB", None, "+44612345678"),  # no hint: as before, possible in GB
    ],
)
def test_a_national_phone_invalid_in_the_listing_country_is_read_in_the_mail_language(
    text: str, region: str, language_region: str | None, expected: str
) -> None:
    assert normalise_phone(text, region, language_region) == expected


def _mail(body: bytes, *, charset: str, cte: str = "8bit", subject: str = "New lead") -> bytes:
    payload = base64.encodebytes(body) if cte == "base64" else body
    return (
        f"From: =?utf-8?q?Caf=C3=A9_Leads?= <leads@portal.example>\r\nSubject: {subject}\r\n"
        f'MIME-Version: 1.0\r\nContent-Type: text/plain; charset="{charset}"\r\n'
        f"Content-Transfer-Encoding: {cte}\r\n\r\n"
    ).encode() + payload


@pytest.mark.parametrize(
    ("body", "charset", "cte"),
    [
        ("Société : Café Noël".encode("cp1252"), "windows-1252", "base64"),
        ("Société : Café Noël".encode("latin-1"), "iso-8859-1", "8bit"),
        ("Société : Café Noël".encode("iso-8859-15"), "iso-8859-15", "base64"),
        ("Société : Café Noël".encode(), "utf-8", "base64"),
        ("Société : Café Noël".encode(), "iso-8859-1", "8bit"),  # UTF-8 declared as Latin-1
        ("Société : Café Noël".encode(), "x-no-such-charset", "8bit"),
        ("Société : Café Noël".encode("cp1252"), "x-no-such-charset", "base64"),
        ("Société : Café Noël".encode("cp1252"), "utf-8", "8bit"),  # Latin-1 declared as UTF-8
    ],
)
def test_parts_in_any_declared_or_mislabelled_charset_read_as_written(
    body: bytes, charset: str, cte: str
) -> None:
    mail = read_mail(_mail(body, charset=charset, cte=cte))
    assert "Société : Café Noël" in mail.plain
    assert mail.sender_name == "Café Leads"


@pytest.mark.parametrize(
    "subject",
    [
        "=?utf-8?q?Nouvelle_demande_=E2=80=93_Caf=C3=A9?=",
        "=?iso-8859-1?q?Nouvelle_demande_=96_Caf=E9?=",
        "=?windows-1252?b?Tm91dmVsbGUgZGVtYW5kZSCWIENhZuk=?=",
        "=?x-no-such-charset?q?Nouvelle_demande_Caf=E9?=",
        "=?utf-8?q?broken_=ZZ_encoding",
    ],
)
def test_encoded_subjects_in_any_charset_never_crash(subject: str) -> None:
    mail = read_mail(_mail(b"Name: Ann\r\nEmail: ann@example.com\r\n", charset="utf-8", subject=subject))
    assert "Nouvelle demande" in mail.subject or "broken" in mail.subject


@pytest.mark.parametrize("charset", ["x-no-such-charset", "iso-8859-1", "windows-1252"])
def test_encoded_words_in_a_charset_python_lacks_read_as_a_part_would_be(charset: str) -> None:
    raw = _mail(b"Email: ann@example.com\r\n", charset="utf-8", subject=f"=?{charset}?q?Demande_Caf=E9?=")
    raw = raw.replace(b"=?utf-8?q?Caf=C3=A9_Leads?=", f"=?{charset}?q?Caf=E9_Leads?=".encode())
    mail = read_mail(raw)
    assert (mail.subject, mail.sender_name) == ("Demande Café", "Café Leads")


ROUTING = """
accounts: {main: {}}
locations:
  paris:
    account: main
    business_id: 1001
    board_column_id: 2001
    country: FR
    country_id: 74
    timezone_id: 40
    listings: {espaces: ["E-77"]}
channels:
  espaces:
    lead_source: 20
    adapter: configurable
    country: FR
    label: EspacesPro
    parse:
      senders: [espacespro.example]
      labels:
        requirements.desks:
          fr: [Places souhaitées]
          nl: [Gewenste plekken]
          es: [Plazas deseadas]
        listing.id: {fr: Code espace, es: Código del espacio}
"""


@pytest.mark.parametrize(
    ("body", "desks"),
    [
        ("Nom : Inès Carpentier\nCourriel : ines@carpentier.example\nPlaces souhaitées : 6 à 8\n", (6, 8)),
        ("Naam: Daan Smit\nE-mailadres: daan@smit.example\nGewenste plekken: van 6 tot 8\n", (6, 8)),
        ("Nombre: Ana Ruiz\nCorreo: ana@ruiz.example\nPlazas deseadas: entre 6 y 8\n", (6, 8)),
    ],
)
def test_a_configurable_channel_takes_labels_grouped_by_language(body: str, desks: tuple[int, int]) -> None:
    ctx, adapter = context("espaces", parse_routing_text(ROUTING, "test"))
    text = body + "Code espace : E-77\nBudget : 650 € par poste et par mois\n"
    mail = _mail(text.encode(), charset="utf-8", subject="Nouvelle demande EspacesPro")
    lead = adapter.parse(RawItem("email", mail), ctx)
    assert lead.requirements.desks is not None
    assert (lead.requirements.desks.min, lead.requirements.desks.max) == desks
    assert lead.listing.id == "E-77"
    budget = lead.requirements.budget
    assert budget is not None
    assert (budget.min, budget.max, budget.currency, budget.period) == (650 * 6, 650 * 8, "EUR", "month")


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1000, max_value=9_999_999), st.sampled_from([" ", "\u00a0", "\u202f", "."]))
def test_any_amount_grouped_by_thousands_reads_back(amount: int, grouping: str) -> None:
    written = f"{amount:,}".replace(",", grouping)
    money = parse_money(f"{written},00 € par mois")
    assert money is not None and money.max == amount
