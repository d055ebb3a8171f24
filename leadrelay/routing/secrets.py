"""Secrets in the routing file: inline, by ``*_env`` or by ``*_file``, resolved when first needed.

Never logged; :func:`check_secrets` resolves them all up front, for a start-up check.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import SecretStr

from leadrelay.routing.base import RoutingError
from leadrelay.secret_files import SecretFileError, read_secret_file

if TYPE_CHECKING:
    from leadrelay.routing.model import Routing


def resolve_secret(
    inline: SecretStr | None, env_name: str | None, file: Path | None, where: str
) -> SecretStr | None:
    """A secret given inline, by ``*_env`` (a variable's name) or by ``*_file`` (a file's path)."""
    if inline is not None and inline.get_secret_value():
        return inline
    if env_name:
        value = os.environ.get(env_name)
        if not value:
            raise RoutingError("routing", [f"{where}_env: environment variable {env_name} is not set"])
        return SecretStr(value)
    if file is not None:
        try:
            return SecretStr(read_secret_file(file, where=f"{where}_file"))
        except SecretFileError as err:
            raise RoutingError("routing", [str(err)]) from None
    return None


@dataclass(frozen=True)
class SecretCheck:
    where: str
    problem: str


def check_secrets(routing: Routing, *, parts: Iterable[str] = ("webhooks", "accounts")) -> list[SecretCheck]:
    """Resolve every secret the given parts need; report the ones missing."""
    problems: list[SecretCheck] = []
    wanted = set(parts)
    if "webhooks" in wanted:
        for name, channel in routing.channels.items():
            if channel.webhook is None:
                continue
            try:
                channel.webhook.keys(f"channels.{name}.webhook")
            except RoutingError as err:
                problems.extend(SecretCheck(p.split(":")[0], p) for p in err.problems)
    if "accounts" in wanted:
        for name, account in routing.accounts.items():
            try:
                account.resolved_password(f"accounts.{name}", None)
                account.resolved_username(f"accounts.{name}", None)
            except RoutingError as err:
                problems.extend(SecretCheck(p.split(":")[0], p) for p in err.problems)
    return problems
