"""Reading notification e-mail: MIME and charsets, HTML layouts, forwards, non-leads."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from leadrelay.adapters.mail.classify import not_a_lead
from leadrelay.adapters.mail.forwards import unwrap
from leadrelay.adapters.mail.html import html_to_text
from leadrelay.adapters.mail.message import read_mail
from leadrelay.adapters.mail.pairs import pairs_in

NOTIFICATION = "Name: Amara Okafor\nEmail: amara@brightlane.io\nReference: enq_8F2KQ7XW\n"


def _mail(
    body: str,
    *,
    subject: str = "New enquiry",
    sender: str = "Hubble <enquiries@hubblehq.com>",
    charset: str = "utf-8",
    cte: str = "quoted-printable",
    subtype: str = "plain",
) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, "leads@example.com", subject
    msg.set_content(body, subtype=subtype, charset=charset, cte=cte)
    return msg.as_bytes()


@pytest.mark.parametrize("charset", ["utf-8", "iso-8859-1", "windows-1252", "iso-8859-15"])
@pytest.mark.parametrize("cte", ["quoted-printable", "base64", "8bit"])
def test_text_is_decoded_whatever_the_charset_and_transfer_encoding(charset: str, cte: str) -> None:
    mail = read_mail(_mail("Name: Jörg Weiß\nBudget: £500\n", charset=charset, cte=cte))
    assert "Jörg Weiß" in mail.plain and "£500" in mail.plain


def test_undeclared_latin1_bytes_still_read() -> None:
    raw = b"From: a@kontor.com\r\nSubject: x\r\nContent-Type: text/plain\r\n\r\nName: J\xf6rg\r\n"
    assert "Jörg" in read_mail(raw).plain


def test_encoded_word_subjects_are_decoded() -> None:
    raw = b"From: a@kontor.com\r\nSubject: Neue Anfrage =?utf-8?q?=C3=BCber?= Kontor\r\n\r\nx\r\n"
    assert read_mail(raw).subject == "Neue Anfrage über Kontor"


@pytest.mark.parametrize(
    "html",
    [
        "<table><tr><td>Phone</td><td>07700 900123</td></tr></table>",
        "<table><tr><th>Phone:</th><td>07700&nbsp;900123</td></tr></table>",
        '<div><span class="label">Phone</span> <span class="value">07700 900123</span></div>',
        "<p><b>Phone:</b> 07700 900123</p>",
        "<dl><dt>Phone</dt><dd>07700 900123</dd></dl>",
        "<p><strong>Phone</strong><br>07700 900123</p>",
    ],
)
def test_html_layouts_become_label_value_pairs(html: str) -> None:
    text, _ = html_to_text(f"<html><body>{html}</body></html>")
    pairs = pairs_in(text, lambda line: line == "Phone")
    assert [(p.label, p.value) for p in pairs] == [("Phone", "07700 900123")]


def test_html_links_are_collected_and_scripts_dropped() -> None:
    text, links = html_to_text(
        '<style>p{}</style><script>x()</script><p><a href="https://l.example/t/1">go</a></p>'
    )
    assert text == "go" and links == ["https://l.example/t/1"]


def test_multi_line_values_keep_their_lines() -> None:
    pairs = pairs_in("Message: first line\nsecond line\n\nTerm: 12 months\n")
    assert pairs[0].full_value() == "first line\nsecond line" and pairs[1].value == "12 months"


FORWARDS = {
    "gmail": (
        "FYI\n\n---------- Forwarded message ---------\nFrom: Hubble <enquiries@hubblehq.com>\n"
        "Date: Sat, 28 Nov 2026 at 17:02\nSubject: New enquiry\nTo: <jess@example.com>\n\n\n"
    ),
    "outlook": (
        "See below\n\n-----Original Message-----\nFrom: Hubble [mailto:enquiries@hubblehq.com]\n"
        "Sent: Friday, November 27, 2026 11:02 AM\nTo: Jess <jess@example.com>\nSubject: New enquiry\n\n"
    ),
    "outlook-de": (
        "Bitte\n\nVon: Hubble <enquiries@hubblehq.com>\nGesendet: Freitag, 27. November 2026 11:02\n"
        "An: Jess <jess@example.com>\nBetreff: New enquiry\n\n"
    ),
    "apple": (
        "Begin forwarded message:\n\nFrom: Hubble <enquiries@hubblehq.com>\nSubject: New enquiry\n"
        "Date: 28 November 2026 at 17:02:40 GMT\nTo: jess@example.com\n\n"
    ),
    "thunderbird": (
        "-------- Forwarded Message --------\nSubject: New enquiry\nDate: Sat, 28 Nov 2026 17:02:00 +0000\n"
        "From: Hubble <enquiries@hubblehq.com>\nTo: jess@example.com\n\n"
    ),
}


@pytest.mark.parametrize("style", sorted(FORWARDS))
def test_inline_forwards_reveal_the_original_sender_and_body(style: str) -> None:
    raw = _mail(FORWARDS[style] + NOTIFICATION, subject="Fwd: New enquiry", sender="Jess <jess@example.com>")
    layers = unwrap(read_mail(raw))
    assert [layer.sender for layer in layers] == ["jess@example.com", "enquiries@hubblehq.com"]
    assert layers[-1].subject == "New enquiry"
    assert layers[-1].texts[0].startswith("Name: Amara Okafor")


def test_quoted_forwards_are_unquoted() -> None:
    quoted = "".join(f"> {line}\n" for line in (FORWARDS["apple"] + NOTIFICATION).splitlines()[2:])
    raw = _mail("Begin forwarded message:\n\n" + quoted, sender="Jess <jess@example.com>")
    assert unwrap(read_mail(raw))[-1].texts[0].startswith("Name: Amara Okafor")


def test_attached_messages_are_the_original() -> None:
    outer = EmailMessage()
    outer["From"], outer["Subject"] = "Jess <jess@example.com>", "Fwd: lead"
    outer.set_content("see attached")
    inner = EmailMessage()
    inner["From"], inner["Subject"] = "Hubble <enquiries@hubblehq.com>", "New enquiry"
    inner.set_content(NOTIFICATION)
    outer.add_attachment(inner)
    layers = unwrap(read_mail(outer.as_bytes()))
    assert layers[-1].sender == "enquiries@hubblehq.com" and "Amara" in layers[-1].texts[0]


def test_a_notification_is_not_mistaken_for_a_forward() -> None:
    assert len(unwrap(read_mail(_mail("From: Monday\nName: Amara\nEmail: a@b.example\n")))) == 1


@pytest.mark.parametrize(
    ("subject", "headers", "reason"),
    [
        ("Re: New enquiry", {}, "a reply in a conversation"),
        ("AW: Neue Anfrage", {}, "a reply in a conversation"),
        ("Fwd: RE: New enquiry", {}, "a reply in a conversation"),
        ("Automatic reply: New enquiry", {}, "an automatic reply"),
        ("Abwesenheitsnotiz", {}, "an automatic reply"),
        ("New enquiry", {"Auto-Submitted": "auto-replied"}, "an automatic reply"),
        ("Undeliverable: New enquiry", {}, "a delivery status notification"),
        ("New enquiry", {}, None),
        ("New enquiry", {"Auto-Submitted": "auto-generated"}, None),
    ],
)
def test_mail_that_is_clearly_not_a_lead(subject: str, headers: dict[str, str], reason: str | None) -> None:
    msg = EmailMessage()
    msg["From"], msg["Subject"] = "x@hubblehq.com", subject
    for name, value in headers.items():
        msg[name] = value
    msg.set_content(NOTIFICATION)
    mail = read_mail(msg.as_bytes())
    assert not_a_lead(mail, (mail.subject,)) == reason
