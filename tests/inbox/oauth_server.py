"""A local OAuth2 authorisation server: a token endpoint for leadrelay, an
introspection endpoint for Dovecot's ``oauth2`` passdb. Real HTTP, in a thread.

It also stands in for what ``leadrelay inbox authorize`` talks to: the device
authorisation grant (RFC 8628: ``/devicecode``, then ``authorization_pending`` at
``/token`` until the user approves), the installed-app flow (``/authorize``
redirects to the loopback ``redirect_uri`` with a code, PKCE S256 checked), and
refresh tokens rotated on every refresh when ``rotate`` is set."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

CLIENT_ID = "leadrelay-test-app"
CLIENT_SECRET = "app-secret"
REFRESH_TOKEN = "refresh-1"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@dataclass
class DeviceRequest:
    device_code: str
    user_code: str
    scope: str
    approved: bool = False
    denied: bool = False
    polls: int = 0


class AuthServer:
    """Issues bearer tokens for one mailbox user; knows which are active."""

    def __init__(self, *, user: str = "leads") -> None:
        self.user = user
        self.expires_in = 3600
        self.grants: list[str] = []  # grant_type of every token request, in order
        self.active: set[str] = set()
        self.issue_inactive = False  # hand out tokens the mail server will not accept
        self.rotate = False  # every refresh retires the refresh token and hands out a new one
        self.refresh_tokens: set[str] = {REFRESH_TOKEN}  # the ones the token endpoint accepts
        self.devices: dict[str, DeviceRequest] = {}  # by user code
        self.device_interval = 1
        self.codes: dict[str, tuple[str, str]] = {}  # authorization code -> (redirect_uri, challenge)
        self._serial = itertools.count(1)
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> AuthServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def reset(self) -> None:
        with self._lock:
            self.grants.clear()
            self.active.clear()
            self.expires_in = 3600
            self.issue_inactive = False
            self.rotate = False
            self.refresh_tokens = {REFRESH_TOKEN}
            self.devices.clear()
            self.codes.clear()

    def revoke_all(self) -> None:
        with self._lock:
            self.active.clear()

    def approve(self, user_code: str, *, deny: bool = False) -> None:
        """What the user does on the verification page."""
        with self._lock:
            request = self.devices[user_code]
            request.approved, request.denied = not deny, deny

    def _devicecode(self, form: dict[str, str]) -> tuple[int, dict[str, object]]:
        if form.get("client_id") != CLIENT_ID:
            return 400, {"error": "invalid_client"}
        with self._lock:
            serial = next(self._serial)
            request = DeviceRequest(f"device-{serial}", f"USER-{serial:04d}", form.get("scope", ""))
            self.devices[request.user_code] = request
        return 200, {
            "device_code": request.device_code,
            "user_code": request.user_code,
            "verification_uri": f"{self.base_url}/device",
            "expires_in": 900,
            "interval": self.device_interval,
            "message": f"To sign in, open {self.base_url}/device and enter the code {request.user_code}.",
        }

    def _device_grant(self, form: dict[str, str]) -> tuple[int, dict[str, object]] | None:
        """None once approved: the caller issues the tokens."""
        with self._lock:
            found = [r for r in self.devices.values() if r.device_code == form.get("device_code")]
            if not found:
                return 400, {"error": "invalid_grant"}
            request = found[0]
            request.polls += 1
            if request.denied:
                return 400, {"error": "access_denied"}
            if not request.approved:
                return 400, {"error": "authorization_pending"}
            del self.devices[request.user_code]  # a device code is good for one token response
        return None

    def _code_grant(self, form: dict[str, str]) -> tuple[int, dict[str, object]] | None:
        with self._lock:
            redirect, challenge = self.codes.pop(form.get("code", ""), ("", ""))
        verifier = form.get("code_verifier", "").encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=").decode()
        if not redirect or redirect != form.get("redirect_uri") or digest != challenge:
            return 400, {"error": "invalid_grant"}
        return None

    def authorize_redirect(self, query: dict[str, str]) -> str:
        """The consent page, consented at once: where the browser is sent back to."""
        redirect = query.get("redirect_uri", "")
        if query.get("client_id") != CLIENT_ID or urlsplit(redirect).hostname != "127.0.0.1":
            raise ValueError("bad client or redirect_uri")
        with self._lock:
            code = f"code-{next(self._serial)}"
            self.codes[code] = (redirect, query.get("code_challenge", ""))
        return f"{redirect}?{urlencode({'code': code, 'state': query.get('state', '')})}"

    def _token(self, form: dict[str, str]) -> tuple[int, dict[str, object]]:
        if form.get("client_id") != CLIENT_ID:
            return 401, {"error": "invalid_client"}
        grant = form.get("grant_type", "")
        if grant == "client_credentials" and form.get("client_secret") != CLIENT_SECRET:
            return 401, {"error": "invalid_client"}
        if grant == "refresh_token" and form.get("refresh_token") not in self.refresh_tokens:
            return 400, {"error": "invalid_grant"}
        refusal = {DEVICE_GRANT: self._device_grant, "authorization_code": self._code_grant}.get(grant)
        if refusal is not None and (refused := refusal(form)) is not None:
            return refused
        if grant not in ("client_credentials", "refresh_token", DEVICE_GRANT, "authorization_code"):
            return 400, {"error": "unsupported_grant_type"}
        body: dict[str, object] = {"token_type": "Bearer", "expires_in": self.expires_in}
        with self._lock:
            token = f"token-{next(self._serial)}"
            if not self.issue_inactive:
                self.active.add(token)
            self.grants.append(grant)
            if grant in (DEVICE_GRANT, "authorization_code") or (grant == "refresh_token" and self.rotate):
                if grant == "refresh_token":
                    self.refresh_tokens.discard(form["refresh_token"])
                fresh = f"refresh-{next(self._serial)}"
                self.refresh_tokens.add(fresh)
                body["refresh_token"] = fresh
        return 200, {"access_token": token, **body}

    def _introspect(self, form: dict[str, str]) -> tuple[int, dict[str, object]]:
        with self._lock:
            active = form.get("token") in self.active
        return 200, ({"active": True, "username": self.user} if active else {"active": False})

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                routes = {"/token": server._token, "/introspect": server._introspect}
                route = {**routes, "/devicecode": server._devicecode}.get(self.path)
                status, body = route(form) if route else (404, {"error": "not_found"})
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                try:
                    if url.path != "/authorize":
                        raise ValueError("not found")
                    location = server.authorize_redirect(query)
                except ValueError:
                    self.send_response(400)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(302)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        return Handler
