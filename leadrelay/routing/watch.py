"""Noticing that the routing file changed: one ``stat()`` per look, the content hashed only on a change.

Every process (the receiver, each Celery pool process, the scheduler) looks
before it uses the routing; a reload is validated whole before it replaces
the running one (:meth:`leadrelay.runtime.Runtime.refresh_routing`).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Stamp:
    """What a ``stat()`` says of the file: a change of any of these is worth reading it again."""

    mtime_ns: int
    size: int
    inode: int

    @classmethod
    def of(cls, path: Path) -> Stamp | None:
        try:
            st = os.stat(path)  # follows symlinks: a Kubernetes ConfigMap swaps a link
        except OSError:
            return None
        return cls(st.st_mtime_ns, st.st_size, st.st_ino)


class RoutingWatch:
    """Hands out the file's content when it differs from the content last handed out."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp = Stamp.of(path)
        self._digest = _digest(path)

    def read_if_changed(self, *, force: bool = False) -> str | None:
        """The new text, or None when the content is the one last seen (a stat when untouched).

        The stamp is taken before the read: a write in between is seen at the next look.
        None too when the file cannot be read (:func:`load_routing` says why).
        """
        stamp = Stamp.of(self.path)
        if stamp == self._stamp and not force:
            return None
        self._stamp = stamp
        try:
            data = self.path.read_bytes()
        except OSError:
            return None
        digest = hashlib.sha256(data).hexdigest()
        if digest == self._digest and not force:  # touched, or rewritten the same
            return None
        self._digest = digest
        return data.decode("utf-8", "replace")


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None
