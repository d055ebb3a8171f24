"""IMAP on the wire: folder names as quoted strings, UID sets, and FETCH answers read back.

Pure functions of bytes and strings: no socket here.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from typing import Any

_UID = re.compile(rb"\bUID (\d+)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")


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


def answer_text(data: list[Any]) -> str:
    return " ".join(d.decode("utf-8", "replace") if isinstance(d, bytes) else str(d) for d in data if d)
