"""The Nexudus HTTP client: one per account per process, a total deadline per call.

It never raises for an answer: every call returns a :class:`Result` classified in
:mod:`leadrelay.nexudus.classify`. Tokens come from the form-encoded password
grant, are refreshed with the refresh token (:mod:`leadrelay.nexudus.tokens`), and
a 401 gets one fresh token and one retry before it is reported.

A whole call — the token grant, the request, the 401 retry — ends within
``timeout`` seconds (:mod:`leadrelay.nexudus.deadline`, not httpx's per-phase
timeouts). A caller that owns a lease passes a :class:`SendGuard`: it is asked
right before each request goes out (after the budget's wait and the token; only
the send pacing, milliseconds, comes after it), may refuse or shorten the time
left, and is told how the request ended.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import replace
from http.cookiejar import Cookie, CookieJar
from typing import Any, Protocol

import httpx
from pydantic import SecretStr

from leadrelay import __version__
from leadrelay.metrics import count_throttled, observe_nexudus_call
from leadrelay.nexudus import deadline
from leadrelay.nexudus.classify import Outcome, Result, classify_exception, classify_response
from leadrelay.nexudus.tokens import AuthReport, Tokens


@functools.lru_cache(maxsize=256)
def _absolute(base_url: str, path: str) -> httpx.URL:
    """The request's URL, parsed once: httpx parses a path relative to the client's
    base URL, and again with its params, three or four times a request, each time
    checking it character by character in Python (a lead's three requests: 214 µs
    of CPU to build, 104 µs from these; bench/PROFILE.md, seventeenth pass)."""
    return httpx.URL(f"{base_url}/{path.lstrip('/')}")


COWORKERS = "/api/spaces/coworkers"
OPPORTUNITIES = "/api/crm/crmopportunities"
BOARD_COLUMNS = "/api/crm/crmboardcolumns"
BOARDS = "/api/crm/crmboards"
BUSINESSES = "/api/sys/businesses"
# not in NEXUDUS.md: Nexudus's system lists, by the same naming as /api/sys/businesses
COUNTRIES = "/api/sys/countries"
TIME_ZONES = "/api/sys/simpletimezones"
WRITE_METHODS = frozenset({"POST", "PUT", "DELETE", "PATCH"})
PAGE_SIZE = 100
MAX_PAGES = 50  # a lookup reads at most this many pages of matches
NOT_SENT = "the call's deadline passed before the request could be sent"


class _NullJar(CookieJar):
    """A cookie jar that takes nothing in: a cookie set by hand is dropped (responses: _NoCookies)."""

    def set_cookie(self, cookie: Cookie) -> None:
        return None


class _NoCookies(httpx.Cookies):
    """An empty jar that stays empty, and skips httpx's reading of each response's cookies."""

    def __init__(self) -> None:
        super().__init__(_NullJar())

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class _CookielessClient(httpx.Client):
    """``httpx.Client`` without its cookie jar (httpx has no switch for it: encode/httpx#2992).

    Nexudus's API authenticates each request by its bearer token; a cookie it sets
    (a load balancer's, a web session's) has no part in it, and is neither kept nor
    sent back. httpx read every response's cookies into the jar through a
    ``urllib`` request it built for each: 4 % of a lead's samples in process, about
    80 µs of CPU a request (bench/PROFILE.md, twenty-first pass).
    """

    def __init__(self, **options: Any) -> None:
        if options.get("cookies"):
            raise ValueError("the Nexudus client keeps no cookies")
        super().__init__(**options)
        self._no_cookies = _NoCookies()  # this client's own, though nothing can fill it

    @property
    def cookies(self) -> httpx.Cookies:
        return self._no_cookies

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        if cookies:
            raise ValueError("the Nexudus client keeps no cookies")


class SendGuard(Protocol):
    """Asked right before each request goes out, and told how it ended."""

    def before_send(self, *, write: bool) -> float:
        """Seconds the request may take from now (≤ 0: do not send it); raise to stop the call."""
        ...

    def after_send(self, result: Result) -> None:
        """What the request came to (also when it was not sent after all)."""
        ...


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
        totp: str | None = None,
    ) -> None:
        self.account = account
        self.base_url = base_url.rstrip("/")
        self._budget: Budget = budget or Unlimited()
        self._max_inline_wait = max_inline_wait
        self._timeout = timeout
        self._http = _CookielessClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            transport=transport or deadline.transport(self.base_url),
            headers={"Accept": "application/json", "User-Agent": f"leadrelay/{__version__}"},
            follow_redirects=False,
        )
        self._tokens = Tokens(
            self._http, account=account, username=username, password=password, on_auth=on_auth, totp=totp
        )

    def close(self) -> None:
        self._http.close()

    # ---- auth ----------------------------------------------------------------

    def check_auth(self) -> Result:
        """Obtain a token now (readiness checks, `leadrelay doctor`)."""
        with deadline.within(self._timeout):
            token = self._tokens.access(force=True)
        return token if isinstance(token, Result) else Result(Outcome.ok, 200)

    # ---- calls ---------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        guard: SendGuard | None = None,
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
        with deadline.within(self._timeout):
            result = self._send(method, path, params=params, json=json, write=write, guard=guard, force=False)
            if result.outcome is Outcome.pause and result.status_code == 401:
                result = self._send(
                    method, path, params=params, json=json, write=write, guard=guard, force=True
                )
        if result.outcome is Outcome.throttle and result.retry_after is not None:
            self._budget.penalise(result.retry_after)
        if result.outcome is Outcome.throttle:
            count_throttled(self.account, by="nexudus")
        return result

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Any,
        json: Any,
        write: bool,
        guard: SendGuard | None,
        force: bool,
    ) -> Result:
        token = self._tokens.access(force=force)
        if isinstance(token, Result):
            return token
        if guard is not None:
            asked = deadline.clock()
            deadline.tighten(asked + guard.before_send(write=write))
        # paced last, right before the request: nothing slow may come between the two
        gap = self._budget.pace_send()
        if gap > 0:
            time.sleep(gap)
        result = self._request(method, path, params=params, json=json, token=token, write=write)
        if force:  # the API itself answered with a token fresh from a grant
            result = replace(result, fresh_token=True)
        if guard is not None:
            guard.after_send(result)
        return result

    def _request(self, method: str, path: str, *, params: Any, json: Any, token: str, write: bool) -> Result:
        left = deadline.next_request()
        if left is not None and left <= 0:
            return Result(Outcome.retry, None, message=NOT_SENT)
        started = time.monotonic()
        try:
            url = _absolute(self.base_url, path)
            url = url if params is None else httpx.URL(url, params=params)
            auth = {"Authorization": f"Bearer {token}"}
            response = self._http.request(method, url, json=json, headers=auth)
        except httpx.HTTPError as exc:
            result = classify_exception(exc, write=write)
        else:
            result = classify_response(response, write=write)
        observe_nexudus_call(self.account, method, path, result.outcome, started)
        return result

    # ---- resources -----------------------------------------------------------

    def find_coworker(self, email: str, *, guard: SendGuard | None = None) -> Result:
        """``value`` is the coworker id with exactly this e-mail, or None."""
        params = {"Coworker_Email": email, "page": 1, "size": 25}
        result = self.call("GET", COWORKERS, params=params, guard=guard)
        if not result.ok:
            return result
        records = (result.value or {}).get("Records") or []
        match = next((r for r in records if str(r.get("Email", "")).strip().lower() == email), None)
        return Result(Outcome.ok, result.status_code, value=match["Id"] if match else None)

    def create_coworker(self, payload: dict[str, Any], *, guard: SendGuard | None = None) -> Result:
        return _with_id(self.call("POST", COWORKERS, json=payload, guard=guard))

    def get_coworker(self, coworker_id: int, *, guard: SendGuard | None = None) -> Result:
        return self.call("GET", f"{COWORKERS}/{coworker_id}", guard=guard)

    def update_coworker(self, record: dict[str, Any], *, guard: SendGuard | None = None) -> Result:
        return self.call("PUT", COWORKERS, json=record, guard=guard)

    def find_opportunity(
        self, name: str, system_id: str | None = None, *, guard: SendGuard | None = None
    ) -> Result:
        """``value`` is the opportunity made for this enquiry (its record), or None.

        Keyed on ``SystemId``, which only the API sees (staff may rename the opportunity,
        never that); the Name tag is the fallback, for a record without one. Nexudus's
        text filters match substrings (``Broker 1`` also finds ``Broker 10`` …), so every
        page of matches is read and the whole value compared.
        """
        if system_id:
            by_id = _find_exact(self, "SystemId", system_id, lambda r: r.get("SystemId") == system_id, guard)
            if by_id is not None and (not by_id.ok or by_id.value is not None):
                return by_id
            # not found by SystemId (or a search that ignores the filter): the Name tag

        def named(record: dict[str, Any]) -> bool:
            return record.get("Name") == name and record.get("SystemId") in (None, system_id)

        by_name = _find_exact(self, "Name", name, named, guard)
        if by_name is None:
            message = f"over {MAX_PAGES * PAGE_SIZE} opportunities match the Name {name!r}: cannot be sure"
            return Result(Outcome.retry, 200, message=message)
        return by_name

    def create_opportunity(self, payload: dict[str, Any], *, guard: SendGuard | None = None) -> Result:
        return _with_id(self.call("POST", OPPORTUNITIES, json=payload, guard=guard))

    def get_opportunity(self, opportunity_id: int, *, guard: SendGuard | None = None) -> Result:
        return self.call("GET", f"{OPPORTUNITIES}/{opportunity_id}", guard=guard)

    def update_opportunity(self, record: dict[str, Any], *, guard: SendGuard | None = None) -> Result:
        return self.call("PUT", OPPORTUNITIES, json=record, guard=guard)

    def open_opportunities(self, coworker_id: int, *, guard: SendGuard | None = None) -> Result:
        """``value``: the coworker's opportunities with Status 1 (InProgress)."""
        params = {"CrmOpportunity_Coworker": coworker_id, "CrmOpportunity_Status": 1, "page": 1, "size": 100}
        result = self.call("GET", OPPORTUNITIES, params=params, guard=guard)
        if not result.ok:
            return result
        records = [r for r in (result.value or {}).get("Records") or [] if r.get("CoworkerId") == coworker_id]
        return Result(Outcome.ok, result.status_code, value=records)

    def board_columns(self, column_id: int, *, guard: SendGuard | None = None) -> Result:
        """``value``: the ids of every column on the board that ``column_id`` belongs to."""
        column = self.call("GET", f"{BOARD_COLUMNS}/{column_id}", guard=guard)
        if not column.ok:
            return column
        board = (column.value or {}).get("CrmBoardId")
        listed = self.call(
            "GET",
            BOARD_COLUMNS,
            params={"CrmBoardColumn_CrmBoard": board, "page": 1, "size": 200},
            guard=guard,
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


def _find_exact(
    client: NexudusClient,
    field: str,
    value: str,
    match: Callable[[dict[str, Any]], bool],
    guard: SendGuard | None,
) -> Result | None:
    """The first record of the ``CrmOpportunity_<field>`` search that ``match`` accepts
    (``value`` None when none does); None when too many match to read them all."""
    for page in range(1, MAX_PAGES + 1):
        params = {f"CrmOpportunity_{field}": value, "page": page, "size": PAGE_SIZE}
        result = client.call("GET", OPPORTUNITIES, params=params, guard=guard)
        if not result.ok:
            return result
        envelope = result.value if isinstance(result.value, dict) else {}
        for record in envelope.get("Records") or []:
            if isinstance(record, dict) and match(record):
                return Result(Outcome.ok, result.status_code, value=record)
        if not envelope.get("HasNextPage"):
            return Result(Outcome.ok, result.status_code, value=None)
    return None
