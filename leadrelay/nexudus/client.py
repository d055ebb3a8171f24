"""The Nexudus HTTP client: one per account per process, explicit timeouts.

It never raises for an answer: every call returns a :class:`Result` classified in
:mod:`leadrelay.nexudus.classify`. Tokens come from the form-encoded password
grant, are refreshed with the refresh token, and a 401 gets one fresh token and
one retry before it is reported.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

import httpx
from pydantic import SecretStr

from leadrelay import __version__
from leadrelay.metrics import count_throttled, observe_nexudus_call
from leadrelay.nexudus.classify import Outcome, Result, classify_exception, classify_response

COWORKERS = "/api/spaces/coworkers"
OPPORTUNITIES = "/api/crm/crmopportunities"
BOARD_COLUMNS = "/api/crm/crmboardcolumns"
AUTH_ENDPOINT = "/api/token"
WRITE_METHODS = frozenset({"POST", "PUT", "DELETE", "PATCH"})
TOKEN_MARGIN_SECONDS = 300
AuthReport = Callable[[bool, str | None], None]  # (login worked, why not)


class Budget(Protocol):
    """The account's shared request budget (see leadrelay.nexudus.budget)."""

    def acquire(self, *, write: bool, max_wait: float) -> float:
        """Seconds until this request may go; reserved only when ≤ ``max_wait``."""
        ...

    def pace_send(self) -> float:
        """Called right before sending: seconds to wait so sends keep the hard minimum gap."""
        ...

    def penalise(self, seconds: float) -> None:
        """Nexudus said wait (409/429 + Retry-After): every worker waits."""
        ...


class Unlimited:
    def acquire(self, *, write: bool, max_wait: float) -> float:
        return 0.0

    def pace_send(self) -> float:
        return 0.0

    def penalise(self, seconds: float) -> None:
        return None


@dataclass(slots=True)
class _Token:
    access: str
    refresh: str | None
    expires_at: float


class NexudusClient:
    def __init__(
        self,
        *,
        account: str,
        base_url: str,
        username: str,
        password: SecretStr,
        timeout: float = 10.0,
        budget: Budget | None = None,
        max_inline_wait: float = 1.0,
        transport: httpx.BaseTransport | None = None,
        on_auth: AuthReport | None = None,
    ) -> None:
        self.account = account
        self._on_auth = on_auth
        self.base_url = base_url.rstrip("/")
        self._username = username
        self._password = password
        self._budget: Budget = budget or Unlimited()
        self._max_inline_wait = max_inline_wait
        self._token: _Token | None = None
        self._lock = threading.Lock()
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": f"leadrelay/{__version__}"},
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    # ---- auth ----------------------------------------------------------------

    def _grant(self, form: dict[str, str]) -> _Token | Result:
        started = time.monotonic()
        try:
            response = self._http.post(AUTH_ENDPOINT, data=form)
        except httpx.HTTPError as exc:
            result = classify_exception(exc, write=False)
            observe_nexudus_call(self.account, "POST", AUTH_ENDPOINT, result.outcome, started)
            return result
        if response.status_code == 200:
            body = response.json()
            observe_nexudus_call(self.account, "POST", AUTH_ENDPOINT, Outcome.ok, started)
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
        observe_nexudus_call(self.account, "POST", AUTH_ENDPOINT, result.outcome, started)
        if result.outcome is Outcome.pause:
            self._report_auth(False, result.message)
        return result

    def _report_auth(self, ok: bool, error: str | None) -> None:
        if self._on_auth is not None:
            self._on_auth(ok, error)

    def _access_token(self, *, force: bool = False) -> str | Result:
        with self._lock:
            token = self._token
            if token and not force and token.expires_at - TOKEN_MARGIN_SECONDS > time.monotonic():
                return token.access
            fresh: _Token | Result | None = None
            if token and token.refresh:
                fresh = self._grant({"grant_type": "refresh_token", "refresh_token": token.refresh})
            if not isinstance(fresh, _Token):
                fresh = self._grant(
                    {
                        "grant_type": "password",
                        "username": self._username,
                        "password": self._password.get_secret_value(),
                    }
                )
            if isinstance(fresh, Result):
                self._token = None
                return fresh
            self._token = fresh
            return fresh.access

    def check_auth(self) -> Result:
        """Obtain a token now (readiness checks, `leadrelay doctor`)."""
        token = self._access_token(force=True)
        return token if isinstance(token, Result) else Result(Outcome.ok, 200)

    # ---- calls ---------------------------------------------------------------

    def call(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None
    ) -> Result:
        write = method.upper() in WRITE_METHODS
        wait = self._budget.acquire(write=write, max_wait=self._max_inline_wait)
        if wait > self._max_inline_wait:
            count_throttled(self.account, by="budget")
            return Result(
                Outcome.throttle, None, message="waiting for the account's request budget", retry_after=wait
            )
        if wait > 0:
            time.sleep(wait)
        result = self._send(method, path, params=params, json=json, write=write, force_token=False)
        if result.outcome is Outcome.pause and result.status_code == 401:
            result = self._send(method, path, params=params, json=json, write=write, force_token=True)
            result = replace(result, fresh_token=True)
        if result.outcome is Outcome.throttle and result.retry_after is not None:
            self._budget.penalise(result.retry_after)
        if result.outcome is Outcome.throttle:
            count_throttled(self.account, by="nexudus")
        return result

    def _send(
        self, method: str, path: str, *, params: Any, json: Any, write: bool, force_token: bool
    ) -> Result:
        token = self._access_token(force=force_token)
        if isinstance(token, Result):
            return token
        gap = self._budget.pace_send()
        if gap > 0:
            time.sleep(gap)
        started = time.monotonic()
        try:
            response = self._http.request(
                method, path, params=params, json=json, headers={"Authorization": f"Bearer {token}"}
            )
        except httpx.HTTPError as exc:
            result = classify_exception(exc, write=write)
        else:
            result = classify_response(response, write=write)
        observe_nexudus_call(self.account, method, path, result.outcome, started)
        return result

    # ---- resources -----------------------------------------------------------

    def find_coworker(self, email: str) -> Result:
        """``value`` is the coworker id with exactly this e-mail, or None."""
        result = self.call("GET", COWORKERS, params={"Coworker_Email": email, "page": 1, "size": 25})
        if not result.ok:
            return result
        records = (result.value or {}).get("Records") or []
        match = next((r for r in records if str(r.get("Email", "")).strip().lower() == email), None)
        return Result(Outcome.ok, result.status_code, value=match["Id"] if match else None)

    def create_coworker(self, payload: dict[str, Any]) -> Result:
        return _with_id(self.call("POST", COWORKERS, json=payload))

    def find_opportunity(self, name: str, system_id: str | None = None) -> Result:
        """``value`` is the id of the opportunity named exactly ``name``, or None."""
        result = self.call("GET", OPPORTUNITIES, params={"CrmOpportunity_Name": name, "page": 1, "size": 100})
        if not result.ok:
            return result
        records = (result.value or {}).get("Records") or []
        for record in records:
            if record.get("Name") != name:
                continue  # the Name filter matches substrings
            if system_id and record.get("SystemId") not in (None, system_id):
                continue
            return Result(Outcome.ok, result.status_code, value=record["Id"])
        return Result(Outcome.ok, result.status_code, value=None)

    def create_opportunity(self, payload: dict[str, Any]) -> Result:
        return _with_id(self.call("POST", OPPORTUNITIES, json=payload))

    def get_opportunity(self, opportunity_id: int) -> Result:
        return self.call("GET", f"{OPPORTUNITIES}/{opportunity_id}")

    def update_opportunity(self, record: dict[str, Any]) -> Result:
        return self.call("PUT", OPPORTUNITIES, json=record)

    def open_opportunities(self, coworker_id: int) -> Result:
        """``value``: the coworker's opportunities with Status 1 (InProgress)."""
        params = {"CrmOpportunity_Coworker": coworker_id, "CrmOpportunity_Status": 1, "page": 1, "size": 100}
        result = self.call("GET", OPPORTUNITIES, params=params)
        if not result.ok:
            return result
        records = [r for r in (result.value or {}).get("Records") or [] if r.get("CoworkerId") == coworker_id]
        return Result(Outcome.ok, result.status_code, value=records)

    def board_columns(self, column_id: int) -> Result:
        """``value``: the ids of every column on the board that ``column_id`` belongs to."""
        column = self.call("GET", f"{BOARD_COLUMNS}/{column_id}")
        if not column.ok:
            return column
        board = (column.value or {}).get("CrmBoardId")
        listed = self.call(
            "GET", BOARD_COLUMNS, params={"CrmBoardColumn_CrmBoard": board, "page": 1, "size": 200}
        )
        if not listed.ok:
            return listed
        ids = {r["Id"] for r in (listed.value or {}).get("Records") or [] if r.get("CrmBoardId") == board}
        return Result(Outcome.ok, listed.status_code, value=ids | {column_id})


def _with_id(result: Result) -> Result:
    """A write's ``value`` becomes the new record's Id (from the envelope's Value.Id)."""
    if not result.ok:
        return result
    envelope = result.value if isinstance(result.value, dict) else {}
    new_id = (envelope.get("Value") or {}).get("Id") if isinstance(envelope.get("Value"), dict) else None
    if new_id is None:
        return Result(
            Outcome.retry,
            result.status_code,
            message="Nexudus answered a write without Value.Id",
            maybe_committed=True,
            excerpt=result.excerpt,
        )
    return Result(Outcome.ok, result.status_code, value=int(new_id), excerpt=result.excerpt)
