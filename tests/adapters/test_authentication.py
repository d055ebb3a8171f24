"""Reading Authentication-Results (RFC 8601): whose to believe, what passed, in linear time."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from leadrelay.adapters.mail.authentication import (
    MAX_VALUE_CHARS,
    aligned,
    parse_results,
    passed,
    read_headers,
    trusted_results,
)
from tests.adapters.test_linear_time import _seconds

HUBBLE = ("hubblehq.com", "hubble.com")
GMAIL = (
    "Authentication-Results: mx.google.com;\r\n"
    "       dkim=pass header.i=@hubblehq.com header.s=s1 header.b=Ab1;\r\n"
    "       spf=pass (google.com: domain of bounces@mail.hubblehq.com designates 192.0.2.1 as permitted "
    "sender) smtp.mailfrom=bounces@mail.hubblehq.com;\r\n"
    "       dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=hubblehq.com\r\n"
)


def mail(*headers: str, sender: str = "Hubble <enquiries@hubblehq.com>") -> bytes:
    return (
        "".join(headers) + f"From: {sender}\r\nSubject: New enquiry\r\n\r\nEmail: a@b.example\r\n"
    ).encode()


def verdict(raw: bytes, trusted_ids: tuple[str, ...] = ("mx.google.com",)) -> str | None:
    headers = read_headers(raw)
    results = trusted_results(headers, trusted_ids)
    assert headers.from_domain is not None
    return passed(results, headers.from_domain, HUBBLE) if results else None


def test_a_real_gmail_header_with_comments_passes_by_dmarc() -> None:
    raw = mail(GMAIL)
    headers = read_headers(raw)
    assert headers.from_domain == "hubblehq.com"
    results = trusted_results(headers, ["MX.Google.com"])
    assert results is not None and results.authserv_id == "mx.google.com"
    assert [(r.method, r.result) for r in results.results] == [
        ("dkim", "pass"),
        ("spf", "pass"),
        ("dmarc", "pass"),
    ]
    assert verdict(raw) == "dmarc"


def test_a_header_from_a_server_not_trusted_is_ignored() -> None:
    forged = "Authentication-Results: mx.attacker.example; dmarc=pass header.from=hubblehq.com\r\n"
    assert verdict(mail(forged)) is None
    assert verdict(mail(GMAIL), trusted_ids=("mx.other.example",)) is None
    assert verdict(mail(GMAIL), trusted_ids=()) is None


def test_only_the_topmost_trusted_header_counts_a_forged_one_below_it_does_not() -> None:
    real = "Authentication-Results: mx.google.com; dkim=none; spf=softfail smtp.mailfrom=x.example\r\n"
    forged = "Authentication-Results: mx.google.com; dmarc=pass header.from=hubblehq.com\r\n"
    assert verdict(mail(real, "Received: from attacker\r\n", forged)) is None
    # the real header on top decides, whatever is below it
    assert verdict(mail(GMAIL, forged)) == "dmarc"


def test_dmarc_pass_for_another_from_domain_does_not_count() -> None:
    other = "Authentication-Results: mx.google.com; dmarc=pass header.from=evil.example\r\n"
    assert verdict(mail(other)) is None


def test_dkim_pass_counts_only_when_aligned_with_the_from_domain() -> None:
    aligned_sig = (
        "Authentication-Results: mx.google.com; dkim=pass header.d=mail.hubblehq.com; dmarc=none\r\n"
    )
    other_sig = "Authentication-Results: mx.google.com; dkim=pass header.d=evil.example; dmarc=none\r\n"
    lookalike = "Authentication-Results: mx.google.com; dkim=pass header.d=nothubblehq.com\r\n"
    failed = "Authentication-Results: mx.google.com; dkim=fail header.d=hubblehq.com\r\n"
    assert verdict(mail(aligned_sig)) == "dkim"
    assert verdict(mail(other_sig)) is None
    assert verdict(mail(lookalike)) is None
    assert verdict(mail(failed)) is None


def test_spf_pass_counts_only_with_an_aligned_mail_from() -> None:
    good = "Authentication-Results: mx.google.com; spf=pass smtp.mailfrom=bounce@em.hubblehq.com\r\n"
    bad = "Authentication-Results: mx.google.com; spf=pass smtp.mailfrom=bounce@sendgrid.net\r\n"
    assert verdict(mail(good)) == "spf"
    assert verdict(mail(bad)) is None


def test_alignment_is_within_one_trusted_domain() -> None:
    assert aligned("hubblehq.com", "hubblehq.com", ())
    assert aligned("mail.hubblehq.com", "hubblehq.com", HUBBLE)
    assert not aligned("mail.hubblehq.com", "hubblehq.com", ())  # no trusted parent: exact only
    assert not aligned("com", "hubblehq.com", HUBBLE)
    assert not aligned("hubble.com", "hubblehq.com", HUBBLE)  # two trusted domains, not one


def test_the_from_domain_is_read_from_names_comments_and_odd_spacing() -> None:
    for sender, domain in (
        ('"Hubble (enquiries)" <enquiries@HubbleHQ.com>', "hubblehq.com"),
        ("enquiries@hubblehq.com (Hubble)", "hubblehq.com"),
        ("Hubble <enquiries@hubblehq.com>, Other <x@evil.example>", "hubblehq.com"),
        ("no address at all", None),
    ):
        assert read_headers(mail(sender=sender)).from_domain == domain, sender
    two = mail("From: x@evil.example\r\n")
    assert read_headers(two).from_count == 2


def test_quoted_values_and_semicolons_inside_comments_do_not_split_results() -> None:
    value = (
        'mx.google.com; dkim=pass (good; really) header.d="hubblehq.com"; dmarc=pass header.from=hubblehq.com'
    )
    results = parse_results(value)
    assert results is not None
    assert [(r.method, r.props.get("header.d")) for r in results.results] == [
        ("dkim", "hubblehq.com"),
        ("dmarc", None),
    ]


def _hostile(unit: str, size: int, where: str) -> bytes:
    text = unit * (size // len(unit))
    if where == "value":  # one long Authentication-Results, folded every 70 characters
        folded = "\r\n ".join(text[i : i + 70] for i in range(0, len(text), 70))
        return mail(f"Authentication-Results: mx.google.com; {folded}\r\n")
    if where == "headers":  # many short headers
        return mail(*(f"Authentication-Results: {unit}\r\n" for _ in range(size // 30)))
    return mail(sender=text.replace("\r", " ").replace("\n", " "))


@settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    unit=st.sampled_from(["(", ")", '"', "\\", ";", "a=", "a.b=", "(((", "@", "<a@", " "])
    | st.text(alphabet='a(;)"\\=.@< \t', min_size=1, max_size=5),
    where=st.sampled_from(["value", "headers", "from"]),
)
@example(unit="(", where="value")
@example(unit='"', where="value")
@example(unit="\\", where="from")
@example(unit="x", where="headers")
def test_reading_headers_takes_linear_time_on_hostile_input(unit: str, where: str) -> None:
    size = 40_000

    def run(n: int) -> Callable[[], None]:
        raw = _hostile(unit, n, where)

        def read() -> None:
            headers = read_headers(raw)
            results = trusted_results(headers, ["mx.google.com"])
            if results:
                passed(results, headers.from_domain or "x.example", HUBBLE)

        return read

    fast, slow = _seconds(run(size)), _seconds(run(4 * size))
    assert slow <= 8 * max(fast, 0.002), f"{unit!r} {where}: {fast * 1000:.1f} ms, then {slow * 1000:.1f} ms"


def test_a_value_is_read_only_to_its_cap() -> None:
    raw = mail("Authentication-Results: mx.google.com; " + "dkim=pass; " * 10_000 + "\r\n")
    [value] = read_headers(raw).results
    assert len(value) <= MAX_VALUE_CHARS
