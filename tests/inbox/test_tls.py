"""IMAPS and STARTTLS against Dovecot with a self-signed certificate."""

from __future__ import annotations

from leadrelay.testing.dovecot import Dovecot
from leadrelay.testing.mails import sample
from tests.inbox.support import inbox, mail_leads, poll


def tls_logins(dovecot: Dovecot) -> int:
    return sum(1 for line in dovecot.log().splitlines() if "Login: user=<leads>" in line and ", TLS" in line)


def test_imaps_with_the_servers_ca_polls_the_inbox(dovecot: Dovecot, folders, make_runtime) -> None:
    folder = folders(sample("workthere", "email-enquiry.eml"))
    before = tls_logins(dovecot)
    config = inbox(dovecot, folder, port=dovecot.imaps_port, tls=True, ca_file=str(dovecot.ca_file))
    report = poll(make_runtime({"leads": config}))
    assert report.ok, report.error
    assert report.new == 1
    assert tls_logins(dovecot) == before + 1


def test_starttls_upgrades_the_plain_port_before_logging_in(dovecot: Dovecot, folders, make_runtime) -> None:
    folder = folders(sample("kontor", "email-lead.eml"))
    before = tls_logins(dovecot)
    config = inbox(dovecot, folder, tls=False, starttls=True, ca_file=str(dovecot.ca_file))
    rt = make_runtime({"leads": config})
    assert poll(rt).new == 1
    assert tls_logins(dovecot) == before + 1
    assert [row.channel for row in mail_leads(rt)] == ["kontor"]


def test_an_untrusted_certificate_is_refused_and_not_retried(dovecot: Dovecot, folders, make_runtime) -> None:
    config = inbox(dovecot, folders(), port=dovecot.imaps_port, tls=True)
    report = poll(make_runtime({"leads": config}))
    assert report.retries == 0
    assert report.error is not None
    assert (
        f"the TLS certificate of 127.0.0.1:{dovecot.imaps_port} is not trusted (self-signed certificate)"
        in (report.error)
    )
    assert "inboxes.leads.ca_file" in report.error


def test_imaps_on_a_plain_port_says_which_setting_is_wrong(dovecot: Dovecot, folders, make_runtime) -> None:
    config = inbox(dovecot, folders(), tls=True, ca_file=str(dovecot.ca_file))
    report = poll(make_runtime({"leads": config}))
    assert report.retries == 0
    assert report.error is not None
    assert "WRONG_VERSION_NUMBER" in report.error and "starttls: true, 143" in report.error
