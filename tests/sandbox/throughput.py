"""Requests per second the Nexudus sandbox sustains over keep-alive, limits off.

Run: ``python tests/sandbox/throughput.py [--seconds 5] [--clients 3]``. The sandbox runs in
its own process (``serve()``), each client in another, so the figure is the server's.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import multiprocessing
import socket
import subprocess
import sys
import time

PATHS = (
    "/api/crm/crmboards/1501",
    "/api/spaces/coworkers?Coworker_Email=brokers%2Bhubblehq%40sandbox.example",
    "/api/crm/crmboardcolumns?CrmBoardColumn_CrmBoard=1501",
)
AUTH = "Basic " + base64.b64encode(b"sandbox@leadrelay.local:sandbox").decode()
SERVER = (
    "import sys; from leadrelay.sandbox import SandboxOptions, serve; "
    "serve('127.0.0.1', int(sys.argv[1]), options=SandboxOptions(limits_enabled=False))"
)


def _client(port: int, seconds: float) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port)
    done, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        connection.request("GET", PATHS[done % len(PATHS)], headers={"Authorization": AUTH})
        response = connection.getresponse()
        response.read()
        assert response.status == 200, response.status
        done += 1
    return done


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_up(port: int) -> None:
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the sandbox did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=3)
    args = parser.parse_args()
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)], stderr=subprocess.DEVNULL)
    try:
        _wait_until_up(port)
        with multiprocessing.Pool(args.clients) as pool:
            started = time.monotonic()
            counts = pool.starmap(_client, [(port, args.seconds)] * args.clients)
            elapsed = time.monotonic() - started
        total = sum(counts)
        rate = total / elapsed
        print(f"{total} requests in {elapsed:.2f} s, {args.clients} keep-alive connections: {rate:,.0f}/s")
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
