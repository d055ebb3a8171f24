"""An inbox that cannot be polled says why in one line, and what to fix; nothing is touched."""

from __future__ import annotations

import pytest

from leadrelay.routing import RoutingError
from leadrelay.testing.dovecot import Dovecot
from leadrelay.testing.mails import sample
from tests.conftest import free_port
from tests.inbox.conftest import inbox_routing
from tests.inbox.proxy import SilentServer
from tests.inbox.support import inbox, mail_leads, poll, watermark


def test_a_wrong_password_is_refused_at_once_with_what_to_check(
    dovecot: Dovecot, folders, make_runtime
) -> None:
    rt = make_runtime({"leads": inbox(dovecot, folders(), password="not-the-password")})
    report = poll(rt)
    assert report.retries == 0  # a password does not get better by trying again
    assert report.error is not None
    assert "refused the login" in report.error
    assert "check inboxes.leads.username and its password" in report.error
    assert "not-the-password" not in report.error
    assert watermark(rt).last_error == report.error
    assert watermark(rt).lease_owner is None


def test_a_password_from_an_unset_variable_is_named(
    dovecot: Dovecot, folders, make_runtime, monkeypatch
) -> None:
    monkeypatch.delenv("LEADS_IMAP_PASSWORD", raising=False)
    config = inbox(dovecot, folders(), password=None, password_env="LEADS_IMAP_PASSWORD")
    report = poll(make_runtime({"leads": config}))
    assert report.error == "inboxes.leads.password_env: environment variable LEADS_IMAP_PASSWORD is not set"

    monkeypatch.setenv("LEADS_IMAP_PASSWORD", "leads-secret")
    assert poll(make_runtime({"leads": config})).ok


def test_a_missing_folder_is_named(dovecot: Dovecot, make_runtime) -> None:
    report = poll(make_runtime({"leads": inbox(dovecot, "No-Such-Folder")}))
    assert report.error == "folder 'No-Such-Folder' does not exist on the server: check inboxes.leads.folder"
    assert report.retries == 0


def test_a_missing_processed_folder_is_named_before_anything_is_imported(
    dovecot: Dovecot, folders, make_runtime
) -> None:
    folder = folders(sample("kontor", "email-lead.eml"))
    rt = make_runtime({"leads": inbox(dovecot, folder, processed_folder="Verarbeitet")})
    report = poll(rt)
    assert report.error == (
        "folder 'Verarbeitet' does not exist on the server: create it or fix inboxes.leads.processed_folder"
    )
    assert mail_leads(rt) == []


def test_an_unreachable_host_is_retried_then_reported(make_runtime, dovecot: Dovecot) -> None:
    rt = make_runtime({"leads": inbox(dovecot, "INBOX", port=free_port())})
    report = poll(rt)
    assert report.retries == 3
    assert report.error is not None
    assert "refused the connection: check inboxes.leads.host and port" in report.error


def test_a_server_that_never_answers_times_out(make_runtime, dovecot: Dovecot) -> None:
    with SilentServer() as silent:
        rt = make_runtime({"leads": inbox(dovecot, "INBOX", port=silent.port, timeout_seconds=0.3)})
        report = poll(rt)
    assert report.retries == 3
    assert report.error == f"127.0.0.1:{silent.port} did not answer the greeting within 0.3s"


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"tls": True, "starttls": True}, "set tls (IMAPS, port 993) or starttls (port 143), not both"),
        ({"host": "imap.example.com", "tls": False}, "plain IMAP would send the password in clear"),
        (
            {"password": None},
            "give password, password_env or password_file, or an oauth2 block (exactly one)",
        ),
        ({"processed_folder": "INBOX"}, "processed_folder must differ from folder"),
        ({"channel": "nope"}, "inboxes.leads.channel: no channel named 'nope'"),
    ],
)
def test_inbox_settings_are_checked_when_the_routing_file_is_read(changes: dict, problem: str) -> None:
    config = {
        "host": "127.0.0.1",
        "tls": False,
        "username": "u",
        "password": "p",
        "folder": "INBOX",
        **changes,
    }
    with pytest.raises(RoutingError) as err:
        inbox_routing({"leads": config})
    assert any(problem in line for line in err.value.problems), err.value.problems
