"""Who really sent a mail: the receiving server's ``Authentication-Results`` (RFC 8601).

Pure reading, no network. A sender can write an ``Authentication-Results``
header of their own, so only the topmost one whose authserv-id the operator
trusts counts (the receiving server adds its own above everything the sender
wrote); any other is ignored. The sender's domain passed when that header says
``dmarc=pass`` for the ``From`` domain, ``dkim=pass`` with ``header.d`` aligned
to it, or ``spf=pass`` with an aligned ``smtp.mailfrom``.

Alignment is relaxed (RFC 7489) within the domains the operator trusts for the
channel: the two domains are equal, or both are at or under one trusted domain
(``mail.hubblehq.com`` signs for ``hubblehq.com``).

Hostile input is bounded: only the first :data:`MAX_HEADERS` header lines are
looked at, each header value is read from its first :data:`MAX_VALUE_CHARS`
characters, and every step is one pass over those characters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

MAX_HEADER_BYTES = 64 * 1024  # the header block read at most (a real one is a few KiB)
MAX_HEADERS = 500  # header fields looked at, top down
MAX_VALUE_CHARS = 4096  # of one Authentication-Results value
MAX_RESULTS = 32  # method results read from one header
_HEADERS_END = re.compile(rb"\r?\n\r?\n")
_DOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?)+$")
_ADDRESS = re.compile(r"<([^<>\s]{1,320})>")
_BARE = re.compile(r"[^\s<>(),;:\"]{1,320}@[^\s<>(),;:\"]{1,255}")


@dataclass(frozen=True, slots=True)
class MethodResult:
    """One ``method=result`` of a header, with its properties (``header.d`` …), lower-cased."""

    method: str
    result: str
    props: dict[str, str]


@dataclass(frozen=True, slots=True)
class Results:
    """One ``Authentication-Results`` header: who wrote it and what it says."""

    authserv_id: str
    results: tuple[MethodResult, ...]


@dataclass(frozen=True, slots=True)
class Headers:
    """The header fields authentication is read from."""

    from_domain: str | None  # of the first From address; None: none, or not a domain
    from_count: int  # From fields: more than one is refused (RFC 7489 6.6.1)
    results: tuple[str, ...]  # Authentication-Results values, top down, each capped
    dkim_domains: tuple[str, ...]  # d= of each DKIM-Signature, top down


def header_fields(raw: bytes) -> list[tuple[str, str]]:
    """The first header fields of a message as (lower-cased name, unfolded value); linear, capped."""
    end = _HEADERS_END.search(raw, 0, MAX_HEADER_BYTES)
    block = raw[: end.start() if end else MAX_HEADER_BYTES].decode("latin-1")
    fields: list[tuple[str, list[str]]] = []
    sizes: list[int] = []
    for line in block.splitlines():
        if line[:1] in (" ", "\t"):
            if fields and sizes[-1] < MAX_VALUE_CHARS:
                piece = line.strip()[:MAX_VALUE_CHARS]
                fields[-1][1].append(piece)
                sizes[-1] += len(piece) + 1
            continue
        if len(fields) >= MAX_HEADERS:
            break
        name, colon, value = line.partition(":")
        if colon and name and " " not in name.strip():
            piece = value.strip()[:MAX_VALUE_CHARS]
            fields.append((name.strip().lower(), [piece]))
            sizes.append(len(piece))
    return [(name, " ".join(pieces)[:MAX_VALUE_CHARS]) for name, pieces in fields]


def _without_comments(value: str) -> str:
    """The value with (nested) comments blanked and quoted strings kept: one pass."""
    out: list[str] = []
    depth, quoted, escaped = 0, False, False
    for char in value:
        if escaped:
            escaped = False
            if not depth:
                out.append(char)
            continue
        if char == "\\" and (quoted or depth):
            escaped = True
            if not depth:
                out.append(char)
            continue
        if quoted:
            quoted = char != '"'
            out.append(char)
        elif char == "(":
            depth += 1
        elif char == ")" and depth:
            depth -= 1
            if not depth:
                out.append(" ")
        elif not depth:
            quoted = char == '"'
            out.append(char)
    return "".join(out)


def _split(value: str, sep: str) -> list[str]:
    """``value`` split at ``sep`` outside quoted strings: one pass."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in value:
        if char == '"':
            quoted = not quoted
        if char == sep and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return value.strip().lower()


def _method(text: str) -> MethodResult | None:
    """``dkim=pass header.d=x.com header.s=s1`` (reason= and versions dropped)."""
    tokens = text.split()
    if not tokens or "=" not in tokens[0]:
        return None
    method, _, result = tokens[0].partition("=")
    props: dict[str, str] = {}
    for token in tokens[1:]:
        key, eq, val = token.partition("=")
        if eq and "." in key:
            props.setdefault(key.lower(), _unquote(val))
    return MethodResult(method.partition("/")[0].strip().lower(), _unquote(result), props)


def parse_results(value: str) -> Results | None:
    """One ``Authentication-Results`` value, or None when it has no authserv-id."""
    parts = _split(_without_comments(value[:MAX_VALUE_CHARS]), ";")
    head = parts[0].split()
    if not head:
        return None
    results = [_method(part) for part in parts[1 : MAX_RESULTS + 1]]
    return Results(_unquote(head[0]), tuple(r for r in results if r is not None))


def _domain(value: str) -> str | None:
    value = value.strip().strip(".").lower()
    return value if len(value) <= 253 and _DOMAIN.match(value) else None


def address_domain(value: str) -> str | None:
    """The domain of the first address in a header value (``Name <a@b.com>`` or ``a@b.com``)."""
    value = _without_comments(value[:MAX_VALUE_CHARS])
    match = _ADDRESS.search(value) or _BARE.search(value)
    if match is None:
        return None
    address = match.group(1) if match.re is _ADDRESS else match.group(0)
    return _domain(address.rpartition("@")[2]) if "@" in address else None


def _dkim_domain(value: str) -> str | None:
    for tag in value[:MAX_VALUE_CHARS].split(";"):
        name, eq, val = tag.partition("=")
        if eq and name.strip().lower() == "d":
            return _domain("".join(val.split()))
    return None


def read_headers(raw: bytes) -> Headers:
    """The From domain, the Authentication-Results and the DKIM signers of a raw message."""
    fields = header_fields(raw)
    froms = [value for name, value in fields if name == "from"]
    return Headers(
        from_domain=address_domain(froms[0]) if froms else None,
        from_count=len(froms),
        results=tuple(value for name, value in fields if name == "authentication-results"),
        dkim_domains=tuple(
            d for name, value in fields if name == "dkim-signature" and (d := _dkim_domain(value))
        ),
    )


def trusted_results(headers: Headers, authserv_ids: Iterable[str]) -> Results | None:
    """The topmost Authentication-Results written by a trusted server; any other is ignored."""
    trusted = {i.strip().lower() for i in authserv_ids if i.strip()}
    for value in headers.results:
        parsed = parse_results(value)
        if parsed is not None and parsed.authserv_id in trusted:
            return parsed
    return None


def under(domain: str, parent: str) -> bool:
    """``domain`` is ``parent`` or one of its subdomains."""
    domain, parent = domain.lower(), parent.lower().lstrip("*.").strip()
    return bool(parent) and (domain == parent or domain.endswith("." + parent))


def aligned(domain: str | None, from_domain: str, trusted: Iterable[str]) -> bool:
    """Relaxed alignment: the same domain, or both at or under one trusted domain."""
    if not domain:
        return False
    domain = domain.lower()
    return domain == from_domain or any(under(domain, t) and under(from_domain, t) for t in trusted)


def passed(results: Results, from_domain: str, trusted: Iterable[str]) -> str | None:
    """Which check passed for the From domain (``dmarc``, ``dkim``, ``spf``), or None."""
    trusted = tuple(trusted)
    by_method: dict[str, list[MethodResult]] = {}
    for result in results.results:
        by_method.setdefault(result.method, []).append(result)
    for result in by_method.get("dmarc", []):
        said = result.props.get("header.from")
        if result.result == "pass" and (said is None or said == from_domain):
            return "dmarc"
    for result in by_method.get("dkim", []):
        signer = result.props.get("header.d") or _domain(result.props.get("header.i", "").rpartition("@")[2])
        if result.result == "pass" and aligned(signer, from_domain, trusted):
            return "dkim"
    for result in by_method.get("spf", []):
        mailfrom = result.props.get("smtp.mailfrom", "")
        domain = mailfrom.rpartition("@")[2] if mailfrom else None
        if result.result == "pass" and aligned(domain, from_domain, trusted):
            return "spf"
    return None


def summary(results: Results) -> str:
    """What a header said, for a dead letter: ``dmarc=fail, dkim=pass (header.d=x.com), spf=none``."""
    said = []
    for result in results.results[:8]:
        domain = result.props.get("header.d") or result.props.get("smtp.mailfrom")
        said.append(f"{result.method}={result.result}" + (f" ({domain[:80]})" if domain else ""))
    return ", ".join(said) or "no results"
