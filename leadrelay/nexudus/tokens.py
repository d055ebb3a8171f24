"""An account's access token: the form-encoded password grant, refreshed with the refresh token.

One per client, shared by its threads (a lock: one grant at a time). A login that
Nexudus refuses is reported (``on_auth``), so that the account shows as needing
attention; a working one clears that.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from pydantic import SecretStr

from leadrelay.metrics import observe_nexudus_call
from leadrelay.nexudus.classify import Outcome, Result, classify_exception, classify_response

AUTH_ENDPOINT = "/api/token"
TOKEN_MARGIN_SECONDS = 300
AuthReport = Callable[[bool, str | None], None]  # (login worked, why not)


@dataclass(slots=True)
class _Token:
    access: str
    refresh: str | None
    expires_at: float


class Tokens:
    """The access token of one account, granted on first use and renewed before it expires."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        account: str,
        username: str,
        password: SecretStr,
        on_auth: AuthReport | None = None,
        totp: str | None = None,
    ) -> None:
        self._http = http
        self._totp = totp  # a two-factor code: good for one login (``leadrelay init --totp``)
        self._account = account
        self._username = username
        self._password = password
        self._on_auth = on_auth
        self._token: _Token | None = None
        self._lock = threading.Lock()

    def _grant(self, form: dict[str, str]) -> _Token | Result:
        started = time.monotonic()
        try:
            response = self._http.post(AUTH_ENDPOINT, data=form)
        except httpx.HTTPError as exc:
            result = classify_exception(exc, write=False)
            observe_nexudus_call(self._account, "POST", AUTH_ENDPOINT, result.outcome, started)
            return result
        if response.status_code == 200:
            body = response.json()
            observe_nexudus_call(self._account, "POST", AUTH_ENDPOINT, Outcome.ok, started)
            self._report_auth(True, None)
            return _Token(
                access=body["access_token"],
                refresh=body.get("refresh_token"),
                expires_at=time.monotonic() + float(body.get("expires_in", 3600)),
            )
        result = classify_response(response, write=False)
        if response.status_code == 400:
            # invalid_grant: wrong credentials — a person must fix the account
            result = Result(Outcome.pause, 400, message=f"Nexudus refused the login: {result.message}")
        observe_nexudus_call(self._account, "POST", AUTH_ENDPOINT, result.outcome, started)
        if result.outcome is Outcome.pause:
            self._report_auth(False, result.message)
        return result

    def _report_auth(self, ok: bool, error: str | None) -> None:
        if self._on_auth is not None:
            self._on_auth(ok, error)

    def access(self, *, force: bool = False) -> str | Result:
        """The access token (a fresh one with ``force``), or why none could be had."""
        with self._lock:
            token = self._token
            if token and not force and token.expires_at - TOKEN_MARGIN_SECONDS > time.monotonic():
                return token.access
            fresh: _Token | Result | None = None
            if token and token.refresh:
                fresh = self._grant({"grant_type": "refresh_token", "refresh_token": token.refresh})
            if not isinstance(fresh, _Token):
                form = {
                    "grant_type": "password",
                    "username": self._username,
                    "password": self._password.get_secret_value(),
                }
                if self._totp:
                    form["totp"] = self._totp
                fresh = self._grant(form)
            if isinstance(fresh, Result):
                self._token = None
                return fresh
            self._token = fresh
            return fresh.access
