"""One IMAP session: connect (IMAPS, STARTTLS or loopback plain), log in, and the few
commands a poll needs, each turned into a typed result or an :class:`InboxError`.

Every socket operation has the inbox's timeout (imaplib applies it to the socket,
also after STARTTLS). Nothing here knows about the ledger.
"""

from __future__ import annotations

import base64
import imaplib
import re
import socket
import ssl
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from leadrelay.routing import InboxConfig, OAuth2Config, RoutingError
from leadrelay.worker.imap import oauth
from leadrelay.worker.imap.errors import InboxError

T = TypeVar("T")
_UID = re.compile(rb"\bUID (\d+)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")
_MISSING_FOLDER = ("NONEXISTENT", "DOESN'T EXIST", "DOES NOT EXIST", "NOT FOUND", "UNKNOWN MAILBOX")


SEARCH_WINDOW = 20_000  # UIDs per SEARCH: imaplib refuses answer lines over 1 MB


@dataclass(frozen=True, slots=True)
class Fetched:
    """A message as fetched: whole, or only its beginning when it is over the size limit."""

    raw: bytes
    size: int  # the server's RFC822.SIZE (at least len(raw))

    @property
    def truncated(self) -> bool:
        return len(self.raw) < self.size


@dataclass(frozen=True, slots=True)
class FolderStatus:
    uidvalidity: int
    uidnext: int | None  # servers SHOULD say; without it one SEARCH covers the rest
    exists: int


def folder_name(name: str) -> str:
    """A folder name as an IMAP quoted string, non-ASCII in modified UTF-7 (RFC 3501 §5.1.3)."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            encoded = base64.b64encode("".join(pending).encode("utf-16-be")).decode()
            out.append("&" + encoded.rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    text = "".join(out).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def uid_set(uids: Iterable[int]) -> str:
    """``1,2,3,7`` as ``1:3,7``: short commands for long runs of UIDs."""
    ordered = sorted(set(uids))
    runs: list[str] = []
    start = prev = ordered[0]
    for uid in [*ordered[1:], None]:
        if uid is not None and uid == prev + 1:
            prev = uid
            continue
        runs.append(str(start) if start == prev else f"{start}:{prev}")
        if uid is not None:
            start = prev = uid
    return ",".join(runs)


def parse_fetch(data: list[Any]) -> dict[int, bytes]:
    """UID → literal from a ``UID FETCH (UID BODY.PEEK[])`` answer.

    Servers put ``UID n`` before or after the literal (Exchange sends it after),
    and may interleave unsolicited FETCH responses that carry flags only.
    """
    found: dict[int, bytes] = {}
    waiting: bytes | None = None
    for item in data:
        if isinstance(item, tuple) and len(item) == 2:
            match = _UID.search(item[0])
            if match:
                found[int(match.group(1))] = item[1]
                waiting = None
            else:
                waiting = item[1]
        elif isinstance(item, bytes) and waiting is not None:
            match = _UID.search(item)
            if match:
                found[int(match.group(1))] = waiting
            waiting = None
    return found


def parse_sizes(data: list[Any]) -> dict[int, int]:
    """UID → RFC822.SIZE from a ``UID FETCH (UID RFC822.SIZE)`` answer, in either order."""
    sizes: dict[int, int] = {}
    for item in data:
        line = item[0] if isinstance(item, tuple) else item
        if not isinstance(line, bytes):
            continue
        uid, size = _UID.search(line), _SIZE.search(line)
        if uid and size:
            sizes[int(uid.group(1))] = int(size.group(1))
    return sizes


def _text(data: list[Any]) -> str:
    return " ".join(d.decode("utf-8", "replace") if isinstance(d, bytes) else str(d) for d in data if d)


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


class ImapSession:
    """A logged-in IMAP connection to one inbox; methods raise only :class:`InboxError`."""

    def __init__(self, imap: imaplib.IMAP4, *, name: str, config: InboxConfig) -> None:
        self.imap = imap
        self.name = name
        self.config = config
        self.capabilities: frozenset[str] = frozenset(imap.capabilities)

    @property
    def where(self) -> str:
        return f"inboxes.{self.name}"

    def call(self, what: str, command: Callable[[], tuple[str, list[Any]]]) -> list[Any]:
        """Run one command; a NO/BAD answer or a broken connection becomes an InboxError."""
        typ, data = guarded(self.config, self.where, what, command)
        if typ != "OK":
            raise InboxError(f"the server refused {what}: {_text(data)[:200]}", retryable=True)
        return data

    def refresh_capabilities(self) -> None:
        data = self.call("CAPABILITY", self.imap.capability)
        if data and isinstance(data[-1], bytes):
            self.capabilities = frozenset(data[-1].decode().upper().split())

    def select(self, folder: str) -> FolderStatus:
        typ, data = guarded(self.config, self.where, "SELECT", lambda: self.imap.select(folder_name(folder)))
        if typ != "OK":
            detail = _text(data)
            if any(marker in detail.upper() for marker in _MISSING_FOLDER):
                raise InboxError(
                    f"folder {folder!r} does not exist on the server: check {self.where}.folder",
                    retryable=False,
                )
            raise InboxError(f"the server refused SELECT {folder!r}: {detail[:200]}", retryable=True)
        _, validity = self.imap.response("UIDVALIDITY")
        if not validity or not validity[0]:
            raise InboxError(
                "the server sent no UIDVALIDITY for the folder (not IMAP4rev1?)", retryable=False
            )
        _, uidnext = self.imap.response("UIDNEXT")
        return FolderStatus(
            uidvalidity=int(validity[0]),
            uidnext=int(uidnext[0]) if uidnext and uidnext[0] else None,
            exists=int(data[0] or 0),
        )

    def require_folder(self, folder: str, *, key: str) -> None:
        data = self.call("LIST", lambda: self.imap.list('""', folder_name(folder)))
        if not any(data):
            raise InboxError(
                f"folder {folder!r} does not exist on the server: create it or fix {self.where}.{key}",
                retryable=False,
            )

    def uids_after(self, last_uid: int, *, uidnext: int | None) -> list[int]:
        """Every UID above ``last_uid``, read or unread: UNSEEN alone misses mail.

        Searched in windows up to the folder's UIDNEXT; mail that arrives meanwhile
        is the next pass's.
        """
        if uidnext is None:
            return self._search(f"{last_uid + 1}:*", above=last_uid)
        found: list[int] = []
        for start in range(last_uid + 1, uidnext, SEARCH_WINDOW):
            found += self._search(f"{start}:{min(start + SEARCH_WINDOW, uidnext) - 1}", above=last_uid)
        return found

    def _search(self, uids: str, *, above: int) -> list[int]:
        data = self.call("UID SEARCH", lambda: self.imap.uid("SEARCH", f"UID {uids}"))
        # "n:*" names the highest UID even when it is below n, hence the filter
        return sorted({int(u) for chunk in data if chunk for u in chunk.split() if int(u) > above})

    def fetch(self, uids: list[int], *, prefix: int | None = None) -> dict[int, bytes]:
        """The raw RFC 822 bytes (the first ``prefix`` bytes, when given); BODY.PEEK so that
        fetching never marks anything seen."""
        item = "BODY.PEEK[]" if prefix is None else f"BODY.PEEK[]<0.{prefix}>"
        data = self.call("UID FETCH", lambda: self.imap.uid("FETCH", uid_set(uids), f"(UID {item})"))
        wanted = set(uids)
        return {uid: body for uid, body in parse_fetch(data).items() if uid in wanted}

    def sizes(self, uids: list[int]) -> dict[int, int]:
        """Each message's RFC822.SIZE: asked first, so that no fetch brings more than the limit."""
        data = self.call("UID FETCH", lambda: self.imap.uid("FETCH", uid_set(uids), "(UID RFC822.SIZE)"))
        wanted = set(uids)
        return {uid: size for uid, size in parse_sizes(data).items() if uid in wanted}

    def fetch_within(self, uids: list[int], limit: int) -> dict[int, Fetched]:
        """Messages up to ``limit`` bytes whole; a bigger one as its first ``limit + 1`` bytes.

        One byte over the limit is enough for every later reader (a replay, the
        worker) to see that the message is too big, and no more is held in memory.
        """
        sizes = self.sizes(uids)
        small = [uid for uid, size in sizes.items() if size <= limit]
        found = {uid: Fetched(raw, max(sizes[uid], len(raw))) for uid, raw in self._whole(small).items()}
        for uid in (uid for uid, size in sizes.items() if size > limit):
            for raw in self.fetch([uid], prefix=limit + 1).values():
                found[uid] = Fetched(raw, sizes[uid])
        return found

    def _whole(self, uids: list[int]) -> dict[int, bytes]:
        return self.fetch(uids) if uids else {}

    def mark_seen(self, uids: list[int]) -> None:
        self.call("UID STORE", lambda: self.imap.uid("STORE", uid_set(uids), "+FLAGS.SILENT", r"(\Seen)"))

    def move(self, uids: list[int], folder: str) -> None:
        """MOVE (RFC 6851), else COPY + \\Deleted + (UID) EXPUNGE."""
        uidset, target = uid_set(uids), folder_name(folder)
        if "MOVE" in self.capabilities:
            self.call("UID MOVE", lambda: self.imap.uid("MOVE", uidset, target))
            return
        self.call("UID COPY", lambda: self.imap.uid("COPY", uidset, target))
        self.call("UID STORE", lambda: self.imap.uid("STORE", uidset, "+FLAGS.SILENT", r"(\Deleted)"))
        if "UIDPLUS" in self.capabilities:
            self.call("UID EXPUNGE", lambda: self.imap.uid("EXPUNGE", uidset))
        else:  # expunges every \Deleted message in the folder, not only ours (docs/inboxes.md)
            self.call("EXPUNGE", self.imap.expunge)

    def close(self) -> None:
        try:
            self.imap.logout()
        except Exception:  # already broken: nothing left to say goodbye to
            self.abandon()

    def abandon(self) -> None:
        """Drop the connection without a LOGOUT (it may be hanging or half-read)."""
        with suppress(OSError):
            self.imap.shutdown()


def guarded(
    config: InboxConfig, where: str, what: str, command: Callable[[], T], *, refused: str | None = None
) -> T:
    """Run an imaplib call, turning socket and protocol failures into an InboxError.

    A NO to a command imaplib raises for (LOGIN, AUTHENTICATE) is ``refused`` — final
    — when given; otherwise a server error, worth another try.
    """
    address = f"{config.host}:{config.port}"
    try:
        return command()
    except TimeoutError:
        reason, retryable = f"{address} did not answer {what} within {config.timeout_seconds:g}s", True
    except ssl.SSLCertVerificationError as exc:
        reason = f"the TLS certificate of {address} is not trusted ({exc.verify_message})"
        reason, retryable = f"{reason}: check {where}.host, or name a CA bundle in {where}.ca_file", False
    except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
        reason, retryable = f"{address} closed the TLS connection during {what}", True
    except ssl.SSLError as exc:
        reason = f"TLS with {address} failed ({exc.reason}): does the port speak IMAPS (tls: true, 993)"
        reason, retryable = f"{reason} or plain IMAP with STARTTLS (starttls: true, 143)?", False
    except socket.gaierror:
        reason, retryable = f"cannot resolve {config.host}: check {where}.host", True
    except ConnectionRefusedError:
        reason, retryable = f"{address} refused the connection: check {where}.host and port", True
    except imaplib.IMAP4.abort as exc:
        reason, retryable = f"the connection to {address} broke during {what} ({_short(exc)})", True
    except imaplib.IMAP4.error as exc:
        if refused is not None:
            reason, retryable = f"the server refused the {what} ({_short(exc)}): {refused}", False
        else:
            reason, retryable = f"the server rejected {what} ({_short(exc)})", True
    except (OSError, EOFError) as exc:
        reason, retryable = f"the connection to {address} broke during {what} ({type(exc).__name__})", True
    raise InboxError(reason, retryable=retryable)


def _short(exc: Exception) -> str:
    return " ".join(str(exc).split())[:160]


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


def _login(session: ImapSession) -> None:
    config, where, imap = session.config, session.where, session.imap
    if config.oauth2 is not None:
        _login_oauth2(session, config.oauth2)
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


def _login_oauth2(session: ImapSession, oauth2: OAuth2Config) -> None:
    config, where = session.config, session.where
    fix = f"check {where}.username and the app's access to the mailbox (docs/inboxes.md)"
    for last_try in (False, True):
        token = oauth.access_token(oauth2, where=f"{where}.oauth2", timeout=config.timeout_seconds)
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
def open_session(name: str, config: InboxConfig) -> Iterator[ImapSession]:
    """A logged-in session to inbox ``name``; logged out (or dropped) on exit."""
    session = ImapSession(_open(config, f"inboxes.{name}"), name=name, config=config)
    try:
        _login(session)
        session.refresh_capabilities()  # the post-login list is the one that names MOVE and UIDPLUS
        yield session
    except BaseException:
        session.abandon()
        raise
    session.close()
