"""Replies, junk and bodies that are no lead: the quoted original is the lead, the
replier's words never are; auto-replies, bounces, newsletters and empty bodies are
refused as no lead (ignored), never as unreadable (a dead letter)."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from leadrelay.adapters import NotALead, ParseError, RawItem
from leadrelay.adapters.detect import detect_channel
from leadrelay.adapters.mail.classify import not_a_lead
from leadrelay.adapters.mail.forwards import unwrap
from leadrelay.adapters.mail.message import read_mail
from leadrelay.adapters.mail.replies import without_reply_prefix
from tests.adapters.support import context, routing

NOTIFICATION = (
    "Name: Amara Okafor\nCompany: Brightlane Ltd\nEmail: amara.okafor@brightlane.io\n"
    "Phone: 07700 900123\nDesks: 12\nReference: enq_8F2KQ7XW\n"
)
# what staff write above a quote: a signature with labels of its own
REPLIER = "Thanks, we'll call them.\n\nJess Morgan\nPhone: 020 7946 0000\nEmail: jess@foundry.example\n\n"


def _quoted(text: str) -> str:
    return "".join(f"> {line}\n" if line else ">\n" for line in text.splitlines())


ATTRIBUTIONS = {
    "gmail": "On Fri, 27 Nov 2026 at 09:14, Hubble <enquiries@hubblehq.com> wrote:\n",
    "gmail wrapped": (
        "On Fri, 27 Nov 2026 at 09:14, Hubble Notifications Team <\nenquiries@hubblehq.com> wrote:\n"
    ),
    "german": "Am Fr., 27. Nov. 2026 um 09:14 Uhr schrieb Hubble <enquiries@hubblehq.com>:\n",
    "french": "Le ven. 27 nov. 2026 à 09:14, Hubble <enquiries@hubblehq.com> a\nécrit :\n",
    "spanish": "El vie, 27 nov 2026 a las 09:14, Hubble (<enquiries@hubblehq.com>) escribió:\n",
    "dutch": "Op vr 27 nov. 2026 om 09:14 schreef Hubble <enquiries@hubblehq.com>:\n",
    "thunderbird": "Hubble wrote on 27/11/2026 09:14:\n",
}


def _mail(
    body: str, *, subject: str, sender: str = "Jess Morgan <jess@foundry.example>", **headers: str
) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, "leads@foundry.example", subject
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg.as_bytes()


@pytest.mark.parametrize("style", sorted(ATTRIBUTIONS))
def test_a_reply_quotes_its_original_without_the_repliers_words(style: str) -> None:
    raw = _mail(
        REPLIER + ATTRIBUTIONS[style] + _quoted(NOTIFICATION), subject="Re: New enquiry (enq_8F2KQ7XW)"
    )
    layers = unwrap(read_mail(raw))
    assert len(layers) == 2
    original = layers[-1]
    assert original.texts[0].startswith("Name: Amara Okafor")
    assert "Jess" not in original.texts[0] and "020 7946 0000" not in original.texts[0]
    assert original.subject == "New enquiry (enq_8F2KQ7XW)"
    if "hubblehq.com" in ATTRIBUTIONS[style]:
        assert original.sender == "enquiries@hubblehq.com"


def test_a_reply_is_read_as_the_quoted_lead() -> None:
    ctx, adapter = context("hubblehq")
    raw = _mail(
        REPLIER + ATTRIBUTIONS["gmail"] + _quoted(NOTIFICATION) + "\n-- \nSent from the Foundry desk\n",
        subject="RE: New viewing request (ref enq_8F2KQ7XW)",
    )
    lead = adapter.parse(RawItem("email", raw), ctx)
    assert lead.external_id == "enq_8F2KQ7XW"
    assert lead.kind == "viewing_request"
    assert lead.contact.email == "amara.okafor@brightlane.io"
    assert lead.contact.phone == "+447700900123"  # not the replier's signature
    assert lead.contact.full_name == "Amara Okafor"


def test_a_reply_to_a_reply_reaches_the_notification() -> None:
    inner = REPLIER + ATTRIBUTIONS["gmail"] + _quoted(NOTIFICATION)
    outer = "Done, booked.\n\nOn Fri, 27 Nov 2026 at 10:02, Jess <jess@foundry.example> wrote:\n" + _quoted(
        inner
    )
    ctx, adapter = context("hubblehq")
    lead = adapter.parse(RawItem("email", _mail(outer, subject="Re: Re: New enquiry")), ctx)
    assert (lead.external_id, lead.contact.phone) == ("enq_8F2KQ7XW", "+447700900123")


OUTLOOK_BLOCKS = {
    "english": "From: Hubble <enquiries@hubblehq.com>\nSent: Friday, November 27, 2026 9:14 AM\n"
    "To: leads@foundry.example\nSubject: New enquiry\n",
    "french": "De : Hubble <enquiries@hubblehq.com>\nEnvoyé : vendredi 27 novembre 2026 09:14\n"
    "À : leads@foundry.example\nObjet : Nouvelle demande\n",
    "dutch": "Van: Hubble <enquiries@hubblehq.com>\nVerzonden: vrijdag 27 november 2026 09:14\n"
    "Aan: leads@foundry.example\nOnderwerp: Nieuwe aanvraag\n",
    "spanish": "De: Hubble <enquiries@hubblehq.com>\nEnviado el: viernes, 27 de noviembre de 2026 9:14\n"
    "Para: leads@foundry.example\nAsunto: Nueva solicitud\n",
    "german": "Von: Hubble <enquiries@hubblehq.com>\nGesendet: Freitag, 27. November 2026 09:14\n"
    "An: leads@foundry.example\nBetreff: Neue Anfrage\n",
}


@pytest.mark.parametrize("language", sorted(OUTLOOK_BLOCKS))
def test_an_outlook_reply_reads_the_original_below_its_header_block(language: str) -> None:
    body = REPLIER + "-----Original Message-----\n" + OUTLOOK_BLOCKS[language] + "\n" + NOTIFICATION
    layers = unwrap(read_mail(_mail(body, subject="RE: New enquiry")))
    assert [layer.sender for layer in layers] == ["jess@foundry.example", "enquiries@hubblehq.com"]
    assert layers[-1].texts[0].startswith("Name: Amara Okafor")


@pytest.mark.parametrize("style", sorted(ATTRIBUTIONS))
def test_a_replys_channel_is_the_quoted_portals_not_the_repliers(style: str) -> None:
    """Sender of the quoted original, else its content (the portal's reference): never the replier."""
    raw = _mail(REPLIER + ATTRIBUTIONS[style] + _quoted(NOTIFICATION), subject="Re: your message")
    assert detect_channel(raw, routing().channels) == "hubblehq"


def test_a_reply_that_quotes_no_notification_is_no_lead() -> None:
    ctx, adapter = context("hubblehq")
    body = (
        "Sounds good, see you Wednesday.\n\n"
        "On Fri, 27 Nov 2026 at 11:00, Jess <jess@foundry.example> wrote:\n> Hi Amara,\n> see you at 10.\n"
    )
    with pytest.raises(NotALead, match="a reply in a conversation"):
        adapter.parse(RawItem("email", _mail(body, subject="Re: Your viewing (ref enq_8F2KQ7XW)")), ctx)


def test_an_unquoted_reply_stays_no_lead_at_the_door() -> None:
    mail = read_mail(_mail("Thanks!\n", subject="Re: New enquiry"))
    assert not_a_lead(mail, (mail.subject,)) == "a reply in a conversation"


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Re: AW: New enquiry", "New enquiry"),
        ("RE: Fwd: New enquiry", "New enquiry"),
        ("Antw: Workthere enquiry", "Workthere enquiry"),
        ("Re[2]: SV: Tour request", "Tour request"),
        ("Request for 12 desks", "Request for 12 desks"),
    ],
)
def test_reply_and_forward_prefixes_come_off_the_subject(subject: str, expected: str) -> None:
    assert without_reply_prefix(subject) == expected


@pytest.mark.parametrize(
    ("subject", "headers", "reason"),
    [
        ("Automatisch antwoord: Nieuwe aanvraag", {}, "an automatic reply"),
        ("Respuesta automática: Nueva solicitud", {}, "an automatic reply"),
        ("Réponse automatique : Nouvelle demande", {}, "an automatic reply"),
        ("Out of Office: New enquiry", {}, "an automatic reply"),
        ("New enquiry", {"X-Autoreply": "yes"}, "an automatic reply"),
        ("New enquiry", {"X-Autorespond": "New enquiry"}, "an automatic reply"),
        ("New enquiry", {"Precedence": "auto_reply"}, "an automatic reply"),
        ("Delivery Status Notification (Failure)", {}, "a delivery status notification"),
        ("Mail delivery failed: returning message to sender", {}, "a delivery status notification"),
        ("Onbestelbaar: Nieuwe aanvraag", {}, "a delivery status notification"),
        ("Absence of a budget", {}, "an automatic reply"),  # French "Absence" opens an OOO subject
        ("New enquiry", {"Precedence": "bulk"}, None),  # a newsletter signal alone settles nothing
        ("New enquiry", {"List-Unsubscribe": "<https://x.example/u>"}, None),
    ],
)
def test_automatic_mail_is_recognised(subject: str, headers: dict[str, str], reason: str | None) -> None:
    mail = read_mail(_mail(NOTIFICATION, subject=subject, sender="x@hubblehq.com", **headers))
    assert not_a_lead(mail, (mail.subject,)) == reason


def test_mail_from_the_mailer_daemon_is_a_bounce_whatever_its_subject() -> None:
    mail = read_mail(_mail(NOTIFICATION, subject="Returned", sender="MAILER-DAEMON@mx.example"))
    assert not_a_lead(mail, (mail.subject,)) == "a delivery status notification"


def test_a_newsletter_naming_only_the_portals_people_is_no_lead() -> None:
    ctx, adapter = context("workthere")
    body = "Q4 in numbers\n\nConsultant name: Hannah Cole\nEmail: hannah.cole@workthere.com\n"
    raw = _mail(
        body, subject="London market update", sender="Workthere <insights@workthere.com>", Precedence="bulk"
    )
    with pytest.raises(NotALead, match="newsletter"):
        adapter.parse(RawItem("email", raw), ctx)


def test_a_notification_sent_as_bulk_mail_is_still_a_lead() -> None:
    ctx, adapter = context("hubblehq")
    raw = _mail(
        NOTIFICATION,
        subject="New enquiry",
        sender="Hubble <enquiries@hubblehq.com>",
        List_Unsubscribe="<https://hubblehq.com/u>",
        Precedence="bulk",
    )
    assert adapter.parse(RawItem("email", raw), ctx).external_id == "enq_8F2KQ7XW"


@pytest.mark.parametrize("channel", ["hubblehq", "kontor", "liquidspace", "workthere", "canonical"])
@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"", "the body is empty"),
        (b"  \n", "the body is empty"),
        (b"{}", "an empty JSON object"),
        (b"[]", "an empty array"),
        (b'[{"email": "a@b.example"}]', "an array, not a JSON object"),
        (b"null", "null, not a JSON object"),
        (b'"lead"', "a string"),
        (b"42", "a number"),
        (b"true", "a boolean"),
    ],
)
def test_an_empty_or_non_object_webhook_body_is_no_lead(channel: str, body: bytes, why: str) -> None:
    ctx, adapter = context(channel)
    with pytest.raises(NotALead, match=why):
        adapter.parse(RawItem("webhook", body), ctx)


@pytest.mark.parametrize("channel", ["hubblehq", "canonical"])
def test_a_body_that_is_not_json_is_unreadable_not_ignored(channel: str) -> None:
    ctx, adapter = context(channel)
    with pytest.raises(ParseError, match="not JSON"):
        adapter.parse(RawItem("webhook", b'{"email": '), ctx)
