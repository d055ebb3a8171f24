"""`leadrelay inbox authorize` and rotated refresh tokens, against a local OAuth2 stand-in
(real HTTP: device code per RFC 8628, the loopback installed-app flow, rotation) and
XOAUTH2 logins to a real Dovecot that checks each token with that server."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from leadrelay.models import InboxToken
from leadrelay.routing import OAuth2Config
from leadrelay.runtime import Runtime
from leadrelay.testing.dovecot import Dovecot
from leadrelay.testing.mails import sample
from leadrelay.testing.processes import service_env
from leadrelay.worker.imap import oauth
from leadrelay.worker.imap.authorize import AuthorizeError, device_flow, loopback_flow
from leadrelay.worker.imap.tokens import _hash
from tests.inbox.conftest import Folders, MakeRuntime
from tests.inbox.oauth_server import CLIENT_ID, CLIENT_SECRET, DEVICE_GRANT, REFRESH_TOKEN, AuthServer
from tests.inbox.support import inbox, poll, routing_file
from tests.test_cli import cli

SCOPE = "https://outlook.office365.com/IMAP.AccessAsUser.All offline_access"


def oauth2(auth: AuthServer, **extra: Any) -> dict[str, Any]:
    return {
        "token_url": f"{auth.base_url}/token",
        "device_authorization_url": f"{auth.base_url}/devicecode",
        "authorization_url": f"{auth.base_url}/authorize",
        "client_id": CLIENT_ID,
        "scope": SCOPE,
        "grant": "refresh_token",
        **extra,
    }


def delegated(dovecot: Dovecot, folder: str, auth: AuthServer, **extra: Any) -> dict[str, Any]:
    return inbox(dovecot, folder, password=None, oauth2=oauth2(auth, **extra))


def stored(rt: Runtime, name: str = "leads") -> InboxToken | None:
    with rt.sessions() as session:
        return session.execute(select(InboxToken).where(InboxToken.inbox == name)).scalar_one_or_none()


def approve_when_asked(auth: AuthServer, *, after_polls: int = 1, deny: bool = False) -> threading.Thread:
    """The person at the verification page: approves once the CLI has polled ``after_polls`` times."""

    def act() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            waiting = list(auth.devices.values())
            if waiting and waiting[0].polls >= after_polls:
                auth.approve(waiting[0].user_code, deny=deny)
                return
            time.sleep(0.05)

    thread = threading.Thread(target=act, daemon=True)
    thread.start()
    return thread


def test_authorize_with_a_device_code_stores_the_token_and_the_poller_signs_in_with_it(
    dovecot: Dovecot,
    auth_server: AuthServer,
    folders: Folders,
    make_runtime: MakeRuntime,
    clean_db: str,
    tmp_path: Path,
) -> None:
    folder = folders(sample("hubblehq", "email-viewing-request.eml"))
    inboxes = {"leads": delegated(dovecot, folder, auth_server)}
    env = service_env(LEADRELAY_CONFIG=str(routing_file(tmp_path, inboxes)), LEADRELAY_DATABASE_URL=clean_db)
    rt = make_runtime(inboxes)
    report = poll(rt)  # before anyone signed in: a consent problem that names the fix
    assert report.kind == "consent" and "leadrelay inbox authorize" in (report.error or "")

    approver = approve_when_asked(auth_server, after_polls=1)  # one authorization_pending first
    result = cli("inbox", "authorize", "leads", env={**env, "COLUMNS": "200"})
    approver.join()

    assert result.returncode == 0, result.stderr
    assert "enter the code USER-" in result.stdout and "/device" in result.stdout
    assert "Authorized inbox leads" in result.stdout
    row = stored(rt)
    assert row is not None and row.seed is None and row.client_id == CLIENT_ID
    assert row.refresh_token in auth_server.refresh_tokens and row.refresh_token != REFRESH_TOKEN
    assert row.refresh_token not in result.stdout + result.stderr
    assert auth_server.grants == [DEVICE_GRANT]

    report = poll(rt)
    assert report.ok, report.error
    assert report.new == 1 and auth_server.grants[-1] == "refresh_token"
    assert "method=XOAUTH2" in dovecot.log()


def test_a_rotated_refresh_token_is_kept_in_the_ledger_and_used_after_a_restart(
    dovecot: Dovecot, auth_server: AuthServer, folders: Folders, make_runtime: MakeRuntime
) -> None:
    rt = make_runtime({"leads": delegated(dovecot, folders(), auth_server, refresh_token=REFRESH_TOKEN)})
    auth_server.rotate = True  # every refresh retires the token it was given
    assert poll(rt).ok
    first = stored(rt)
    assert first is not None and first.rotations == 1 and first.seed == _hash(REFRESH_TOKEN)
    assert REFRESH_TOKEN not in auth_server.refresh_tokens  # the configured one is dead now
    assert first.refresh_token in auth_server.refresh_tokens

    for _restart in range(2):  # a new process remembers nothing: the ledger does
        oauth.clear()
        assert poll(rt).ok
    latest = stored(rt)
    assert latest is not None and latest.rotations == 3 and latest.refresh_token in auth_server.refresh_tokens

    # the operator configures a freshly issued token: it is newer than the ledger's lineage
    auth_server.refresh_tokens.add("refresh-reissued")
    rt = make_runtime({"leads": delegated(dovecot, folders(), auth_server, refresh_token="refresh-reissued")})
    oauth.clear()
    assert poll(rt).ok
    row = stored(rt)
    assert row is not None and row.seed == _hash("refresh-reissued") and row.rotations == 4
    assert "refresh-reissued" not in auth_server.refresh_tokens  # it was used (and rotated)


def test_revoked_consent_is_a_consent_failure_until_authorized_again(
    dovecot: Dovecot, auth_server: AuthServer, folders: Folders, make_runtime: MakeRuntime
) -> None:
    rt = make_runtime({"leads": delegated(dovecot, folders(), auth_server, refresh_token=REFRESH_TOKEN)})
    assert poll(rt).ok
    auth_server.refresh_tokens.clear()  # the user withdrew the app's consent
    auth_server.revoke_all()
    oauth.clear()
    report = poll(rt)
    assert report.kind == "consent" and "authorize" in (report.error or "")
    assert REFRESH_TOKEN not in (report.error or "")


def test_device_flow_waits_slows_down_and_stops_when_denied(auth_server: AuthServer) -> None:
    config = OAuth2Config.model_validate(oauth2(auth_server))
    waits: list[float] = []
    shown: list[str] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 3:
            [request] = auth_server.devices.values()
            auth_server.approve(request.user_code, deny=True)

    with pytest.raises(AuthorizeError, match="declined"):
        device_flow(config, where="inboxes.leads.oauth2", show=shown.append, sleep=sleep)
    assert waits == [1.0, 1.0, 1.0] and "USER-" in shown[0]
    assert stored_nothing(auth_server)


def stored_nothing(auth: AuthServer) -> bool:
    return auth.refresh_tokens == {REFRESH_TOKEN}


def test_the_loopback_flow_takes_the_code_from_the_redirect_with_pkce(auth_server: AuthServer) -> None:
    config = OAuth2Config.model_validate(oauth2(auth_server, client_secret=CLIENT_SECRET))
    shown: list[str] = []

    def browser(url: str) -> None:  # the person signs in; the consent page sends them back
        assert "code_challenge_method=S256" in url and "redirect_uri=http%3A%2F%2F127.0.0.1%3A" in url
        threading.Thread(target=httpx.get, args=(url,), kwargs={"follow_redirects": True}).start()

    granted = loopback_flow(config, where="inboxes.leads.oauth2", show=shown.append, open_browser=browser)
    assert granted.refresh_token in auth_server.refresh_tokens - {REFRESH_TOKEN}
    assert auth_server.grants == ["authorization_code"] and "/authorize?" in shown[0]


def test_the_loopback_flow_gives_up_when_nobody_signs_in(auth_server: AuthServer) -> None:
    config = OAuth2Config.model_validate(oauth2(auth_server))
    with pytest.raises(AuthorizeError, match="no sign-in came back"):
        loopback_flow(config, where="w", show=lambda _: None, wait_seconds=0.2)
