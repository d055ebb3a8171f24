"""Starting the bare baselines (floor_ingest, floor_delivery) as real processes, as leadrelay's run.

Each floor runs in its own process group, like leadrelay's processes, so the
bench measures its CPU the same way (procstat).
"""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

from bench.env import libpq_url
from leadrelay.children import Child, free_port, wait_http
from leadrelay.runtime import SANDBOX_PASSWORD, SANDBOX_USERNAME

PREFIX = "floor"  # the intake keys of the delivery floor's leads


class Floor(Child):
    """``python -m ARGS`` in its own process group, output to ``logdir/NAME.log``."""

    def __init__(self, name: str, args: list[str], *, env: dict[str, str], logdir: Path) -> None:
        self.name = name
        self.log_path = logdir / f"{name}.log"
        self._log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", *args],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def receiver(env: dict[str, str], workdir: Path, *, url: str, key: bytes, workers: int) -> tuple[Floor, str]:
    """The ingest floor under uvicorn with ``workers`` processes, uvicorn's defaults otherwise."""
    port = free_port()
    floor_env = {**env, "FLOOR_DSN": libpq_url(url), "FLOOR_KEY": base64.b64encode(key).decode()}
    args = ["uvicorn", "bench.floor_ingest:app", "--port", str(port), "--workers", str(workers),
            "--no-access-log", "--log-level", "warning"]  # fmt: skip
    child = Floor("floor-receiver", args, env=floor_env, logdir=workdir)
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/healthz", child, timeout=60)
    return child, base


def delivery(env: dict[str, str], workdir: Path, *, url: str, base_url: str, processes: int) -> list[Floor]:
    """``processes`` delivery loops, each claiming leads until none is left."""
    args = ["bench.floor_delivery", libpq_url(url), base_url, SANDBOX_USERNAME, SANDBOX_PASSWORD, PREFIX]
    return [Floor(f"floor-delivery{n}", args, env=env, logdir=workdir) for n in range(processes)]
