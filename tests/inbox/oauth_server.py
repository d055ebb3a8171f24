"""A local OAuth2 authorisation server: a token endpoint for leadrelay, an
introspection endpoint for Dovecot's ``oauth2`` passdb. Real HTTP, in a thread."""

from __future__ import annotations

import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

CLIENT_ID = "leadrelay-test-app"
CLIENT_SECRET = "app-secret"
REFRESH_TOKEN = "refresh-1"


class AuthServer:
    """Issues bearer tokens for one mailbox user; knows which are active."""

    def __init__(self, *, user: str = "leads") -> None:
        self.user = user
        self.expires_in = 3600
        self.grants: list[str] = []  # grant_type of every token request, in order
        self.active: set[str] = set()
        self.issue_inactive = False  # hand out tokens the mail server will not accept
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

    def revoke_all(self) -> None:
        with self._lock:
            self.active.clear()

    def _token(self, form: dict[str, str]) -> tuple[int, dict[str, object]]:
        if form.get("client_id") != CLIENT_ID:
            return 401, {"error": "invalid_client"}
        grant = form.get("grant_type", "")
        if grant == "client_credentials" and form.get("client_secret") != CLIENT_SECRET:
            return 401, {"error": "invalid_client"}
        if grant == "refresh_token" and form.get("refresh_token") != REFRESH_TOKEN:
            return 400, {"error": "invalid_grant"}
        if grant not in ("client_credentials", "refresh_token"):
            return 400, {"error": "unsupported_grant_type"}
        with self._lock:
            token = f"token-{next(self._serial)}"
            if not self.issue_inactive:
                self.active.add(token)
            self.grants.append(grant)
        return 200, {"access_token": token, "token_type": "Bearer", "expires_in": self.expires_in}

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
                route = {"/token": server._token, "/introspect": server._introspect}.get(self.path)
                status, body = route(form) if route else (404, {"error": "not_found"})
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        return Handler
