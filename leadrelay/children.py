"""Child processes running the leadrelay CLI (the demo, and the tests' real processes)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


class Child:
    """``python -m leadrelay.cli ARGS`` in its own process group, output to ``logdir/NAME.log``."""

    def __init__(self, name: str, args: list[str], *, env: dict[str, str], logdir: Path) -> None:
        self.name = name
        self.log_path = logdir / f"{name}.log"
        self._log = self.log_path.open("ab")
        self._log_from = self._log.tell()  # the file may hold earlier runs' output: this run's starts here
        self.popen = subprocess.Popen(  # noqa: S603 - our own CLI, run by this interpreter
            [sys.executable, "-m", "leadrelay.cli", *args],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole group: a Celery worker's pool children go with it."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)

    def terminate(self) -> None:
        """Ask the group to stop (SIGTERM); :meth:`stop` then waits for it."""
        if self.alive:
            self.kill(signal.SIGTERM)

    def stop(self, timeout: float = 15) -> None:
        if self.alive:
            self.kill(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill(signal.SIGKILL)
                self.popen.wait()
        self.kill(signal.SIGKILL)  # stragglers left in the group
        self._log.close()

    def said(self) -> str:
        """This run's output so far."""
        with self.log_path.open("rb") as log:
            log.seek(self._log_from)
            return log.read().decode(errors="replace")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.said().splitlines()[-lines:])


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_cli(name: str, args: list[str], *, env: dict[str, str], logdir: Path) -> None:
    """Run a CLI command to completion; CalledProcessError when it fails."""
    with (logdir / f"{name}.log").open("ab") as log:
        subprocess.run(  # noqa: S603 - our own CLI, run by this interpreter
            [sys.executable, "-m", "leadrelay.cli", *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=True,
        )


def wait_http(url: str, child: Child, *, timeout: float = 30) -> None:
    """Wait until ``url`` answers (any status below 500); fail early if the child exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive:
            raise RuntimeError(f"{child.name} exited with code {child.popen.returncode}:\n{child.tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code < 500:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f}s:\n{child.tail()}")
