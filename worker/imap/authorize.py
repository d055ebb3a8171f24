"""``leadrelay inbox authorize``: get an inbox's OAuth2 refresh token from a person's consent.

Two flows, both against the endpoints in the inbox's ``oauth2`` block (docs/inboxes.md):

* **device code** (RFC 8628; Microsoft 365): ask ``device_authorization_url`` for a
  code, show the person where to enter it, poll ``token_url`` (honouring
  ``authorization_pending`` and ``slow_down``) until they approve, deny, or the
  code expires;
* **loopback** (the installed-app flow; Google): listen on ``127.0.0.1`` on a free
  port, send the person's browser to ``authorization_url`` (PKCE S256, a random
  ``state``), take the code from the redirect and exchange it at ``token_url``.

The refresh token goes to the ledger (tokens.py), never to a log or the screen.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from leadrelay.errors import UpstreamError
from leadrelay.routing import OAuth2Config, RoutingError

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
Show = Callable[[str], None]


class AuthorizeError(UpstreamError):
    """The consent could not be obtained; one line saying why and what to do."""


@dataclass(frozen=True, slots=True)
class Granted:
    refresh_token: str
    scope: str | None


def _client(config: OAuth2Config, where: str) -> dict[str, str]:
    form = {"client_id": config.client_id}
    try:
        secret = config.resolved_client_secret(where)
    except RoutingError as err:
        raise AuthorizeError("; ".join(err.problems)) from None
    if secret is not None:  # public clients (Microsoft's device flow) have none; Google's need it
        form["client_secret"] = secret.get_secret_value()
    return form


def _post(url: str, form: dict[str, str], timeout: float) -> tuple[int, dict[str, Any]]:
    try:
        answer = httpx.post(url, data=form, headers={"Accept": "application/json"}, timeout=timeout)
    except httpx.HTTPError as exc:
        raise AuthorizeError(f"cannot reach {urlsplit(url).netloc} ({type(exc).__name__})") from None
    try:
        body = answer.json()
    except ValueError:
        body = None
    return answer.status_code, body if isinstance(body, dict) else {}


def _granted(status: int, body: dict[str, Any], url: str) -> Granted:
    if status != 200 or not body.get("access_token"):
        code = str(body.get("error", f"HTTP {status}"))[:60]
        raise AuthorizeError(f"the token endpoint {urlsplit(url).netloc} refused the grant ({code})")
    refresh = body.get("refresh_token")
    if not isinstance(refresh, str) or not refresh:
        raise AuthorizeError(
            "the token endpoint gave no refresh token: add offline_access to oauth2.scope "
            "(Microsoft), or ask for offline access (Google), and authorize again"
        )
    scope = body.get("scope")
    return Granted(refresh_token=refresh, scope=scope if isinstance(scope, str) else None)


def device_flow(
    config: OAuth2Config,
    *,
    where: str,
    show: Show,
    timeout: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Granted:
    """RFC 8628: show the code, then poll until the person approved it."""
    if not config.device_authorization_url:
        raise AuthorizeError(f"{where}.device_authorization_url is not set (docs/inboxes.md)")
    client = _client(config, where)
    start = {**client, **({"scope": config.scope} if config.scope else {})}
    status, body = _post(config.device_authorization_url, start, timeout)
    device_code, user_code = body.get("device_code"), body.get("user_code")
    uri = body.get("verification_uri") or body.get("verification_url")  # Google says _url
    if status != 200 or not (device_code and user_code and uri):
        code = str(body.get("error", f"HTTP {status}"))[:60]
        raise AuthorizeError(f"the device authorization endpoint refused ({code}): check {where}.client_id")
    show(f"Open {uri} and enter the code {user_code} (signed in as the mailbox's user).")
    interval = float(body.get("interval") or 5)
    deadline = time.monotonic() + float(body.get("expires_in") or 900)
    form = {**client, "grant_type": DEVICE_GRANT, "device_code": str(device_code)}
    while time.monotonic() < deadline:
        sleep(interval)
        status, answer = _post(config.token_url, form, timeout)
        error = answer.get("error")
        if status == 200 or error not in ("authorization_pending", "slow_down"):
            if error == "access_denied":
                raise AuthorizeError("the sign-in was declined: nothing was stored")
            if error == "expired_token":
                break
            return _granted(status, answer, config.token_url)
        if error == "slow_down":
            interval += 5  # RFC 8628 §3.5
    raise AuthorizeError("the code expired before anyone entered it: run the command again")


class _Redirect(HTTPServer):
    query: dict[str, str] | None = None
    arrived: threading.Event


def _handler() -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server: _Redirect

        def do_GET(self) -> None:
            query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
            if "code" not in query and "error" not in query:
                self.send_response(404)
                self.end_headers()
                return
            self.server.query = query
            page = b"leadrelay: the sign-in is done; you can close this window.\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)
            self.server.arrived.set()

        def log_message(self, *args: object) -> None:
            pass  # the query holds the code: never logged

    return Handler


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def loopback_flow(
    config: OAuth2Config,
    *,
    where: str,
    show: Show,
    open_browser: Show | None = None,
    timeout: float = 30.0,
    wait_seconds: float = 600.0,
) -> Granted:
    """The installed-app flow: the browser comes back to 127.0.0.1 with the code."""
    if not config.authorization_url:
        raise AuthorizeError(f"{where}.authorization_url is not set (docs/inboxes.md)")
    client = _client(config, where)
    verifier, challenge = _pkce()
    state = secrets.token_urlsafe(16)
    server = _Redirect(("127.0.0.1", 0), _handler())
    server.arrived = threading.Event()
    redirect = f"http://127.0.0.1:{server.server_address[1]}/"
    query = {
        "client_id": config.client_id,
        "redirect_uri": redirect,
        "response_type": "code",
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "access_type": "offline",  # Google: a refresh token, please
        "prompt": "consent",
        **({"scope": config.scope} if config.scope else {}),
    }
    url = f"{config.authorization_url}?{urlencode(query)}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        show(f"Open this address in a browser on this machine and sign in as the mailbox's user:\n{url}")
        if open_browser is not None:
            open_browser(url)
        if not server.arrived.wait(wait_seconds):
            raise AuthorizeError(f"no sign-in came back within {wait_seconds:.0f}s: run the command again")
    finally:
        server.shutdown()
        server.server_close()
    answer = server.query or {}
    if answer.get("state") != state:
        raise AuthorizeError("the answer's state does not match this request: nothing was stored")
    if "error" in answer:
        raise AuthorizeError(f"the sign-in was not completed ({answer['error'][:60]}): nothing was stored")
    form = {
        **client,
        "grant_type": "authorization_code",
        "code": answer["code"],
        "redirect_uri": redirect,
        "code_verifier": verifier,
    }
    status, body = _post(config.token_url, form, timeout)
    return _granted(status, body, config.token_url)
