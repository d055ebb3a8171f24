"""Fault injection for chaos tests: rules that make matching API calls fail in chosen ways.

``status`` answers a code without performing the call; ``status_after_commit`` performs
it, then answers that code (Nexudus's "generic 500 that succeeds on retry"); ``delay``
and ``delay_after_commit`` sleep before performing or before answering; ``drop`` and
``drop_after_commit`` break the connection mid-answer; ``throttle`` answers 409 (or
429) with ``Retry-After``; ``soft_fail`` answers 200 ``WasSuccessful: false``.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Awaitable, Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.responses import Response
from starlette.types import Send

from leadrelay.sandbox.envelopes import generic_error, soft_failure, throttled
from leadrelay.sandbox.limits import format_retry_after

FaultAction = Literal[
    "status",
    "status_after_commit",
    "delay",
    "delay_after_commit",
    "drop",
    "drop_after_commit",
    "throttle",
    "soft_fail",
]
_PERFORMING = frozenset({"delay", "status_after_commit", "delay_after_commit", "drop_after_commit"})


class FaultRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: FaultAction
    method: str = Field(default="*", description="HTTP method, or * for any")
    path_regex: str = Field(default=".*", description="searched in the request path, e.g. crmopportunities$")
    times: int | None = Field(default=1, ge=1, description="fires this many times (None: until deleted)")
    probability: float = Field(default=1.0, ge=0, le=1)
    status: int = Field(default=500, ge=100, le=599, description="for status and status_after_commit")
    seconds: float = Field(default=1.0, ge=0, description="delay, or Retry-After of throttle")
    tenant: str | None = Field(default=None, description="only this login's calls (None: any)")
    id: int = 0  # assigned when added
    fired: int = 0

    @field_validator("method")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

    @field_validator("path_regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as error:
            raise ValueError(f"not a regular expression: {error}") from error
        return value

    def matches(self, method: str, path: str, tenant: str | None) -> bool:
        return (
            self.method in ("*", method)
            and (self.tenant is None or self.tenant == tenant)
            and re.search(self.path_regex, path) is not None
        )


class FaultBook:
    """The active rules, first match wins; mutate with the state lock held."""

    def __init__(self) -> None:
        self.rules: list[FaultRule] = []
        self._next_id = 1

    def add(self, rule: FaultRule) -> FaultRule:
        rule = rule.model_copy(update={"id": self._next_id, "fired": 0})
        self._next_id += 1
        self.rules.append(rule)
        return rule

    def remove(self, rule_id: int) -> bool:
        kept = [rule for rule in self.rules if rule.id != rule_id]
        removed = len(kept) != len(self.rules)
        self.rules = kept
        return removed

    def take(self, method: str, path: str, tenant: str | None) -> FaultRule | None:
        """The rule that fires for this call, counted down (and dropped when used up)."""
        for rule in self.rules:
            if not rule.matches(method, path, tenant) or random.random() >= rule.probability:
                continue
            rule.fired += 1
            if rule.times is not None:
                rule.times -= 1
                if rule.times == 0:
                    self.rules.remove(rule)
            return rule
        return None


SOFT_FAIL = FaultRule(action="soft_fail", times=None)  # the soft-failure quirk, as a rule


async def drop_connection(send: Send) -> None:
    """Start an answer and stop: the server then closes the connection mid-response."""
    headers = [(b"content-type", b"application/json; charset=utf-8"), (b"content-length", b"512")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b'{"Status":200,', "more_body": True})


async def act(
    rule: FaultRule, perform: Callable[[], Awaitable[Response]], send: Send, throttle_status: int
) -> Response | None:
    """Play ``rule`` out; the response to send, or None once the connection has been dropped."""
    if rule.action == "delay":
        await asyncio.sleep(rule.seconds)
    response = await perform() if rule.action in _PERFORMING else None
    match rule.action:
        case "delay":
            return response
        case "delay_after_commit":
            await asyncio.sleep(rule.seconds)
            return response
        case "status" | "status_after_commit":
            return generic_error(rule.status)
        case "throttle":
            return throttled(
                throttle_status, format_retry_after(rule.seconds, whole=rule.seconds.is_integer())
            )
        case "soft_fail":
            return soft_failure()
    await drop_connection(send)
    return None
