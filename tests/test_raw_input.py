"""A lead's raw input for the lead page: mail parts decoded, HTML never live, files listed, bounded."""

from __future__ import annotations

from email.message import EmailMessage

from leadrelay.worker.raw_input import MAX_PARTS, read_raw


def _mail() -> bytes:
    message = EmailMessage()
    message["From"] = "HubbleHQ <leads@hubblehq.com>"
    message["To"] = "leads@operator.example"
    message["Subject"] = "New viewing request"
    message.set_content("Name: Jess Parker\nE-mail: jess@example.com\n")
    message.add_alternative(
        "<p>Name: <b>Jess</b> Parker</p><script>alert(1)</script><img src=x onerror=alert(2)>", subtype="html"
    )
    message.add_attachment(
        b"%PDF-1.7 " + b"x" * 1000, maintype="application", subtype="pdf", filename="brief.pdf"
    )
    return message.as_bytes()


def test_a_mail_is_its_headers_its_text_its_html_as_text_and_its_files_by_size() -> None:
    raw = read_raw(_mail(), "message/rfc822")
    assert raw.is_mail and ("Subject", "New viewing request") in raw.headers
    kinds = {part.content_type: part for part in raw.parts}
    assert "Jess Parker" in (kinds["text/plain"].text or "")
    html = kinds["text/html"]
    assert html.text is not None and "Name:" in html.text and "Jess" in html.text
    assert html.source is not None and "<script>" in html.source  # the source, for the page to escape
    pdf = kinds["application/pdf"]
    assert pdf.attachment and pdf.filename == "brief.pdf" and pdf.size == 1009 and pdf.text is None
    assert [p.number for p in raw.parts] == ["1.1", "1.2", "2"]


def test_a_webhook_body_is_text_and_a_purged_one_says_so() -> None:
    assert read_raw(b'{"a": "\xff"}', "application/json").text == '{"a": "\ufffd"}'
    assert read_raw(None, "message/rfc822").purged


def test_a_mail_of_many_parts_is_cut_at_max_parts() -> None:
    message = EmailMessage()
    message.set_content("body")
    for i in range(MAX_PARTS + 10):
        message.add_attachment(f"file {i}".encode(), maintype="text", subtype="csv", filename=f"{i}.csv")
    raw = read_raw(message.as_bytes(), "message/rfc822")
    assert len(raw.parts) == MAX_PARTS and raw.more_parts > 0
