"""A logged-in IMAP session: the few commands a poll needs, each a typed result or an
:class:`InboxError`."""

from __future__ import annotations

import imaplib
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from leadrelay.routing import InboxConfig
from leadrelay.worker.imap.errors import InboxError
from leadrelay.worker.imap.failures import guarded
from leadrelay.worker.imap.wire import answer_text, folder_name, parse_fetch, parse_sizes, uid_set

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
            detail = answer_text(data)[:200]
            raise InboxError(f"the server refused {what}: {detail}", retryable=True, kind="server")
        return data

    def refresh_capabilities(self) -> None:
        data = self.call("CAPABILITY", self.imap.capability)
        if data and isinstance(data[-1], bytes):
            self.capabilities = frozenset(data[-1].decode().upper().split())

    def select(self, folder: str) -> FolderStatus:
        typ, data = guarded(self.config, self.where, "SELECT", lambda: self.imap.select(folder_name(folder)))
        if typ != "OK":
            detail = answer_text(data)
            if any(marker in detail.upper() for marker in _MISSING_FOLDER):
                raise InboxError(
                    f"folder {folder!r} does not exist on the server: check {self.where}.folder",
                    retryable=False,
                    kind="folder",
                )
            reason = f"the server refused SELECT {folder!r}: {detail[:200]}"
            raise InboxError(reason, retryable=True, kind="server")
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
                kind="folder",
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

    def fetch_within(self, uids: list[int], limit: int, *, sizes: dict[int, int]) -> dict[int, Fetched]:
        """Messages up to ``limit`` bytes whole; a bigger one as its first ``limit + 1`` bytes.

        One byte over the limit is enough for every later reader (a replay, the
        worker) to see that the message is too big, and no more is held in memory.
        ``sizes``: their RFC822.SIZEs (:meth:`sizes`, asked for these UIDs or more);
        a UID without one is no longer there and is not fetched.
        """
        sizes = {uid: sizes[uid] for uid in uids if uid in sizes}
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
