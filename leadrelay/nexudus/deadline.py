"""A total deadline for one Nexudus call, kept at the socket.

httpx's timeouts are per phase (connect, each write, each read), so a slow answer
dripping in can outlast any of them; and a worker stalled after checking its lease
must not send once the lease is over. The deadline here holds for the whole call:
set by :func:`within` around it (and tightened by :func:`tighten` once the lease is
known), it caps every socket operation of the connections :func:`transport` makes,
and refuses any operation after it has passed. Before any byte of a request has
gone out that is a ``ConnectTimeout`` (the request was never sent); after, a
``WriteTimeout`` or ``ReadTimeout`` (it may have reached Nexudus).

The deadline is per thread (a context variable): each worker thread's call has its own.
"""

from __future__ import annotations

import ssl
import time
import typing
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpcore
import httpx

# The clock deadlines are measured on; a test may shift it to play a stalled process.
clock = time.monotonic
WRITE_CHUNK = 64 * 1024


@dataclass(slots=True)
class _Deadline:
    at: float
    sent: bool = False  # a byte of this call's requests has gone out


_current: ContextVar[_Deadline | None] = ContextVar("nexudus_deadline", default=None)


@contextmanager
def within(seconds: float) -> Iterator[None]:
    """Everything the calling thread sends or reads in this block ends within ``seconds``."""
    token = _current.set(_Deadline(clock() + seconds))
    try:
        yield
    finally:
        _current.reset(token)


def tighten(at: float) -> None:
    """Bring the current deadline forward to ``at`` (on :data:`clock`), never back."""
    deadline = _current.get()
    if deadline is not None:
        deadline.at = min(deadline.at, at)


def next_request() -> float | None:
    """A request is about to go out: seconds left for it (≤ 0: do not send); None: no deadline."""
    deadline = _current.get()
    if deadline is None:
        return None
    deadline.sent = False
    return deadline.at - clock()


def _cap(timeout: float | None, *, unsent: type[Exception], sent: type[Exception]) -> float | None:
    """``timeout`` shortened to what is left; raises once nothing is left."""
    deadline = _current.get()
    if deadline is None:
        return timeout
    left = deadline.at - clock()
    if left <= 0:
        raise (sent if deadline.sent else unsent)("the call's deadline has passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        capped = _cap(timeout, unsent=httpcore.ConnectTimeout, sent=httpcore.ReadTimeout)
        return self._inner.read(max_bytes, capped)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        # in pieces, so a large body cannot outlast the deadline by one long write
        for start in range(0, len(buffer), WRITE_CHUNK):
            capped = _cap(timeout, unsent=httpcore.ConnectTimeout, sent=httpcore.WriteTimeout)
            deadline = _current.get()
            if deadline is not None:
                deadline.sent = True
            self._inner.write(buffer[start : start + WRITE_CHUNK], capped)

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        capped = _cap(timeout, unsent=httpcore.ConnectTimeout, sent=httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, capped))

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        capped = _cap(timeout, unsent=httpcore.ConnectTimeout, sent=httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.connect_tcp(host, port, capped, local_address, socket_options))

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        capped = _cap(timeout, unsent=httpcore.ConnectTimeout, sent=httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.connect_unix_socket(path, capped, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def transport(url: str) -> httpx.HTTPTransport:
    """httpx's own transport for ``url``, its connections made through the deadline.

    httpx does not take a network backend, so the one its pool made is wrapped
    before the first connection exists (httpcore's pool passes it to each new
    connection); ``test_a_call_ends_at_its_deadline_however_slowly_the_answer_drips``
    fails if that ever stops working. A transport given to httpx turns its
    environment proxies off, so the proxy the environment names for ``url``
    (``HTTPS_PROXY``, ``NO_PROXY``…) is set here.
    """
    made = httpx.HTTPTransport(proxy=environment_proxy(url))
    pool = made._pool
    if not isinstance(pool, httpcore.ConnectionPool) or not hasattr(pool, "_network_backend"):
        raise RuntimeError("httpx's transport no longer has an httpcore pool with a network backend")
    pool._network_backend = _DeadlineBackend(pool._network_backend)
    return made


def environment_proxy(url: str) -> str | None:
    """The proxy the environment names for ``url``, as httpx would take it; None: go direct."""
    parts = urlsplit(url)
    if urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    proxies = urllib.request.getproxies()
    return proxies.get(parts.scheme) or proxies.get("all")
