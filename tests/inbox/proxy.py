"""TCP stand-ins between the poller and Dovecot: a proxy that drops connections
mid-stream, and a server that accepts and then never says a word."""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Self


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


class _Listener:
    """A loopback port whose connections ``handle`` serves, each in the accept thread."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._open: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._listener.close()
        for sock in self._open:
            _close(sock)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self._open.append(conn)
            self.handle(conn)

    def handle(self, conn: socket.socket) -> None:
        raise NotImplementedError


class CuttingProxy(_Listener):
    """Forwards to ``127.0.0.1:target``; connection *n* is cut after ``cuts[n]`` bytes from the server."""

    def __init__(self, target: int, cuts: list[int]) -> None:
        super().__init__()
        self.target = target
        self.cuts = list(cuts)
        self.connections = 0
        self.cut = 0

    def handle(self, conn: socket.socket) -> None:
        limit = self.cuts[self.connections] if self.connections < len(self.cuts) else None
        self.connections += 1
        server = socket.create_connection(("127.0.0.1", self.target))
        self._open.append(server)
        threading.Thread(target=self._pump, args=(conn, server, None), daemon=True).start()
        threading.Thread(target=self._pump, args=(server, conn, limit), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, limit: int | None) -> None:
        sent = 0
        try:
            while chunk := source.recv(65536):
                if limit is not None and sent + len(chunk) >= limit:
                    sink.sendall(chunk[: limit - sent])
                    self.cut += 1
                    break
                sink.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass
        _close(source)
        _close(sink)


class SilentServer(_Listener):
    """Accepts connections and never answers: every read times out."""

    def handle(self, conn: socket.socket) -> None:
        pass  # held open (and closed on exit) without a word
