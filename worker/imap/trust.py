"""Whether a channel's mail really comes from the portal: the ``verify_sender`` check.

A mail's ``From`` is whatever its sender wrote: anyone can send "From:
enquiries@hubblehq.com" to a leads inbox. A channel with ``verify_sender`` (on
by default for the built-in portals) delivers a mail only when its From domain is
one of the channel's ``sender_domains`` (or the inbox's ``trusted_forwarders``)
and that domain passed authentication: by the topmost ``Authentication-Results``
of a receiving server the inbox trusts (``trusted_authserv_ids``; reading it:
:mod:`leadrelay.adapters.mail.authentication`), else by a DKIM signature
verified here with ``dkimpy`` (its public key looked up in DNS). Anything else is
held as an ``unverified_sender`` dead letter (worker/imap/intake.py), its raw
bytes kept; an admin who has checked it by hand replays it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import dkim  # type: ignore[import-untyped]

from leadrelay.adapters.mail.authentication import (
    Headers,
    aligned,
    passed,
    read_headers,
    summary,
    trusted_results,
    under,
)
from leadrelay.adapters.portal import PortalAdapter
from leadrelay.adapters.registry import ADAPTERS, UnknownAdapterError, adapter_for
from leadrelay.routing import ChannelConfig, InboxConfig, Routing

DnsFunc = Callable[..., bytes | None]  # dkimpy's dnsfunc(name, timeout=…): the TXT record
MAX_SIGNATURES = 4  # DKIM signatures tried here, top down
DKIM_TIMEOUT = 5  # seconds for each key lookup
_QUIET = logging.getLogger("leadrelay.dkim")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


@dataclass(frozen=True, slots=True)
class MailTrust:
    """What an inbox believes: its receiving servers' results, its own forwarders."""

    inbox: str
    authserv_ids: tuple[str, ...] = ()
    forwarders: tuple[str, ...] = ()
    dns: DnsFunc | None = None  # None: the system's resolver (dkimpy's default)

    @classmethod
    def of(cls, name: str, inbox: InboxConfig | None) -> MailTrust:
        if inbox is None:
            return cls(name)
        return cls(name, tuple(inbox.trusted_authserv_ids), tuple(inbox.trusted_forwarders))


@dataclass(frozen=True, slots=True)
class Verdict:
    trusted: bool
    check: str  # what decided: dmarc, dkim, spf, dkim-local, off; or the check that failed
    message: str = ""  # why the mail is held, and what to do


def sender_domains(name: str, config: ChannelConfig) -> tuple[str, ...] | None:
    """The domains a channel's mail must be authenticated for; None: the check is off."""
    registered = ADAPTERS.get(config.adapter or name)
    builtin = isinstance(registered, PortalAdapter)  # one of the portals with code (not configurable)
    if not (config.verify_sender if config.verify_sender is not None else builtin):
        return None
    if config.sender_domains is not None:
        return tuple(config.sender_domains)
    try:
        adapter = adapter_for(name, config)  # the portal's senders and the channel's parse.senders
    except UnknownAdapterError:
        return ()
    senders = adapter.senders if isinstance(adapter, PortalAdapter) else ()
    return tuple(dict.fromkeys(s.rpartition("@")[2].lstrip("*.").lower() for s in senders if s))


def _local_dkim(raw: bytes, headers: Headers, trusted: tuple[str, ...], dns: DnsFunc | None) -> bool:
    """A DKIM signature aligned with the From domain verifies here (key from DNS)."""
    domain = headers.from_domain or ""
    candidates = [i for i, d in enumerate(headers.dkim_domains) if aligned(d, domain, trusted)]
    if not candidates:
        return False
    signer = dkim.DKIM(raw, logger=_QUIET, timeout=DKIM_TIMEOUT)
    for idx in candidates[:MAX_SIGNATURES]:
        try:
            ok = signer.verify(idx=idx, dnsfunc=dns) if dns else signer.verify(idx=idx)
        except Exception:  # a bad signature, key or DNS answer is a failure, not a crash
            ok = False
        if ok and aligned((signer.domain or b"").decode("ascii", "replace"), domain, trusted):
            return True
    return False


def _advice(channel: str, trust: MailTrust) -> str:
    return (
        "; check the lead in the portal itself, then replay this dead letter to deliver it (a replay "
        f"skips this check); if the portal's genuine mail is held, set inboxes.{trust.inbox}."
        f"trusted_authserv_ids to your mail server's authserv-id (docs/inboxes.md), or channels.{channel}."
        "sender_domains"
    )


def verify(raw: bytes, *, channel: str, routing: Routing, trust: MailTrust) -> Verdict:
    """Whether ``channel`` may deliver this mail; what failed when it may not."""
    config = routing.channels.get(channel)
    domains = sender_domains(channel, config) if config is not None else None
    if domains is None:
        return Verdict(True, "off")
    headers = read_headers(raw)
    advice = _advice(channel, trust)
    if headers.from_count != 1 or headers.from_domain is None:
        what = "no From domain" if headers.from_count <= 1 else f"{headers.from_count} From headers"
        return Verdict(False, "from", f"the mail has {what}: its sender cannot be checked" + advice)
    domain = headers.from_domain
    trusted = (*domains, *trust.forwarders)
    if not any(under(domain, d) for d in trusted):
        allowed = ", ".join(trusted) or "none configured"
        return Verdict(
            False,
            "domain",
            f"sent from {domain}, which is not one of channel {channel}'s sender domains ({allowed}); a "
            f"forward from your own domain is trusted when it is in inboxes.{trust.inbox}.trusted_forwarders"
            + advice,
        )
    results = trusted_results(headers, trust.authserv_ids)
    check = passed(results, domain, trusted) if results else None
    if check:
        return Verdict(True, check)
    if _local_dkim(raw, headers, trusted, trust.dns):
        return Verdict(True, "dkim-local")
    said = (
        f"the trusted server {results.authserv_id} says {summary(results)}"
        if results
        else "no Authentication-Results from a trusted server ("
        + (", ".join(trust.authserv_ids) or f"inboxes.{trust.inbox}.trusted_authserv_ids is empty")
        + ")"
    )
    signed = "no DKIM signature of it verified here" if headers.dkim_domains else "no DKIM signature"
    return Verdict(
        False,
        "authentication",
        f"sender domain {domain} is not authenticated: {said}; {signed}" + advice,
    )
