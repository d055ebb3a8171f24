"""One IMAP connection: connect (IMAPS, STARTTLS or loopback plain) and log in, giving an
:class:`~leadrelay.worker.imap.session.ImapSession`.

Every socket operation has the inbox's timeout (imaplib applies it to the socket,
also after STARTTLS). Nothing here knows about the ledger.
"""

from __future__ import annotations

import imaplib
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

from leadrelay.routing import InboxConfig, OAuth2Config, RoutingError
from leadrelay.worker.imap import oauth
from leadrelay.worker.imap.errors import InboxError
from leadrelay.worker.imap.failures import guarded
from leadrelay.worker.imap.session import ImapSession


class _XOAuth2:
    """The XOAUTH2 initial response; an empty answer to the server's error challenge."""

    def __init__(self, user: str, token: str) -> None:
        self._first: bytes | None = f"user={user}\x01auth=Bearer {token}\x01\x01".encode()

    def __call__(self, _challenge: bytes) -> bytes:
        first, self._first = self._first, None
        return first if first is not None else b""


class _Plain:
    """SASL PLAIN: unlike LOGIN, it carries non-ASCII passwords (UTF-8)."""

    def __init__(self, user: str, password: str) -> None:
        self._response = f"\x00{user}\x00{password}".encode()

    def __call__(self, _challenge: bytes) -> bytes:
        return self._response


def _tls_context(config: InboxConfig, where: str) -> ssl.SSLContext:
    if config.ca_file is None:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=str(config.ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise InboxError(f"cannot read {where}.ca_file ({type(exc).__name__})", retryable=False) from None


def _open(config: InboxConfig, where: str) -> imaplib.IMAP4:
    host, port, timeout = config.host, config.port, config.timeout_seconds
    if config.tls:
        context = _tls_context(config, where)
        return guarded(
            config,
            where,
            "the TLS handshake",
            lambda: imaplib.IMAP4_SSL(host, port, ssl_context=context, timeout=timeout),
        )
    imap = guarded(config, where, "the greeting", lambda: imaplib.IMAP4(host, port, timeout=timeout))
    if config.starttls:
        if "STARTTLS" not in imap.capabilities:
            imap.shutdown()
            raise InboxError(
                f"{host}:{port} does not offer STARTTLS: set {where}.tls: true (port 993) instead",
                retryable=False,
            )
        context = _tls_context(config, where)
        guarded(config, where, "STARTTLS", lambda: imap.starttls(ssl_context=context))
    return imap


def _login(session: ImapSession, tokens: oauth.RefreshStore | None = None) -> None:
    config, where, imap = session.config, session.where, session.imap
    if config.oauth2 is not None:
        _login_oauth2(session, config.oauth2, tokens)
        return
    try:
        password = config.resolved_password(where)
    except RoutingError as err:
        raise InboxError("; ".join(err.problems), retryable=False) from None
    if password is None:
        raise InboxError(f"{where}: give password or password_env", retryable=False)
    secret = password.get_secret_value()
    fix = f"check {where}.username and its password"
    if "AUTH=PLAIN" in session.capabilities:
        plain = _Plain(config.username, secret)
        guarded(config, where, "login", lambda: imap.authenticate("PLAIN", plain), refused=fix)
    else:
        guarded(config, where, "login", lambda: imap.login(config.username, secret), refused=fix)


def _login_oauth2(session: ImapSession, oauth2: OAuth2Config, tokens: oauth.RefreshStore | None) -> None:
    config, where = session.config, session.where
    fix = f"check {where}.username and the app's access to the mailbox (docs/inboxes.md)"
    for last_try in (False, True):
        token = oauth.access_token(
            oauth2, where=f"{where}.oauth2", timeout=config.timeout_seconds, store=tokens
        )
        sasl = _XOAuth2(config.username, token)
        try:
            guarded(
                config,
                where,
                "OAuth2 token (XOAUTH2)",
                partial(session.imap.authenticate, "XOAUTH2", sasl),
                refused=fix,
            )
            return
        except InboxError as err:
            if last_try or err.retryable:
                raise
            oauth.forget(oauth2)  # revoked before it expired? one more try with a fresh token


@contextmanager
def open_session(
    name: str, config: InboxConfig, tokens: oauth.RefreshStore | None = None
) -> Iterator[ImapSession]:
    """A logged-in session to inbox ``name``; logged out (or dropped) on exit.

    ``tokens``: where the inbox's newest OAuth2 refresh token is kept (the ledger).
    """
    session = ImapSession(_open(config, f"inboxes.{name}"), name=name, config=config)
    try:
        _login(session, tokens)
        session.refresh_capabilities()  # the post-login list is the one that names MOVE and UIDPLUS
        yield session
    except BaseException:
        session.abandon()
        raise
    session.close()
