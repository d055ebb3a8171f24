"""XOAUTH2 against Dovecot's oauth2 passdb: tokens from a token endpoint, cached, refreshed."""

from __future__ import annotations

import time
from typing import Any

from leadrelay.testing.dovecot import Dovecot
from leadrelay.testing.mails import sample
from tests.conftest import free_port
from tests.inbox.oauth_server import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, AuthServer
from tests.inbox.support import inbox, mail_leads, poll


def oauth_inbox(dovecot: Dovecot, folder: str, auth: AuthServer, **oauth2: Any) -> dict[str, Any]:
    settings = {
        "token_url": f"{auth.base_url}/token",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "scope": "https://outlook.office365.com/.default",
        **oauth2,
    }
    return inbox(dovecot, folder, password=None, oauth2=settings)


def test_xoauth2_logs_in_with_a_client_credentials_token(
    dovecot: Dovecot, auth_server: AuthServer, folders, make_runtime
) -> None:
    folder = folders(sample("hubblehq", "email-viewing-request.eml"))
    rt = make_runtime({"leads": oauth_inbox(dovecot, folder, auth_server)})
    report = poll(rt)
    assert report.ok, report.error
    assert report.new == 1
    assert auth_server.grants == ["client_credentials"]
    assert "method=XOAUTH2" in dovecot.log()


def test_the_token_is_cached_then_refreshed_before_it_expires(
    dovecot: Dovecot, auth_server: AuthServer, folders, make_runtime
) -> None:
    rt = make_runtime({"leads": oauth_inbox(dovecot, folders(), auth_server)})
    assert poll(rt).ok and poll(rt).ok
    assert len(auth_server.grants) == 1  # one token for both passes

    auth_server.expires_in = 2  # refreshed halfway through a short life
    rt = make_runtime({"leads": oauth_inbox(dovecot, folders(), auth_server, scope="other-scope")})
    assert poll(rt).ok
    time.sleep(1.2)
    assert poll(rt).ok
    assert len(auth_server.grants) == 3


def test_a_token_revoked_early_is_replaced_once(
    dovecot: Dovecot, auth_server: AuthServer, folders, make_runtime
) -> None:
    rt = make_runtime({"leads": oauth_inbox(dovecot, folders(), auth_server)})
    assert poll(rt).ok
    auth_server.revoke_all()
    report = poll(rt)
    assert report.ok, report.error
    assert len(auth_server.grants) == 2


def test_a_token_the_server_refuses_is_a_clear_error(
    dovecot: Dovecot, auth_server: AuthServer, folders, make_runtime
) -> None:
    folder = folders(sample("kontor", "email-lead.eml"))
    auth_server.issue_inactive = True
    rt = make_runtime({"leads": oauth_inbox(dovecot, folder, auth_server)})
    report = poll(rt)
    assert report.retries == 0
    assert report.error is not None
    assert report.error.startswith("the server refused the OAuth2 token (XOAUTH2)")
    assert "check inboxes.leads.username and the app's access to the mailbox" in report.error
    assert "token-" not in report.error  # never the token itself
    assert mail_leads(rt) == []


def test_a_token_endpoint_refusing_the_app_names_the_settings(
    dovecot: Dovecot, auth_server: AuthServer, folders, make_runtime
) -> None:
    rt = make_runtime({"leads": oauth_inbox(dovecot, folders(), auth_server, client_secret="wrong")})
    report = poll(rt)
    assert report.retries == 0
    assert report.error == (
        f"the token endpoint 127.0.0.1:{auth_server.httpd.server_address[1]} answered 401 (invalid_client): "
        "check inboxes.leads.oauth2.client_id, client_secret, scope"
    )


def test_the_refresh_token_grant_reads_its_token_from_the_environment(
    dovecot: Dovecot, auth_server: AuthServer, folders, make_runtime, monkeypatch
) -> None:
    monkeypatch.setenv("LEADS_REFRESH_TOKEN", REFRESH_TOKEN)
    config = oauth_inbox(
        dovecot, folders(), auth_server, grant="refresh_token", refresh_token_env="LEADS_REFRESH_TOKEN"
    )
    assert poll(make_runtime({"leads": config})).ok
    assert auth_server.grants == ["refresh_token"]


def test_an_unreachable_token_endpoint_is_retried(
    dovecot: Dovecot, auth_server: AuthServer, folders, make_runtime
) -> None:
    port = free_port()
    rt = make_runtime(
        {"leads": oauth_inbox(dovecot, folders(), auth_server, token_url=f"http://127.0.0.1:{port}/token")}
    )
    report = poll(rt)
    assert report.retries == 3
    assert report.error is not None
    assert report.error.startswith(f"cannot reach the token endpoint 127.0.0.1:{port} (ConnectError)")
