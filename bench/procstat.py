"""CPU time and resident memory of process groups, read from /proc (no psutil here).

Every leadrelay process the bench starts leads its own process group (a Celery
worker's pool children and uvicorn's worker processes are in it), so a group
stands for "the receiver" or "a worker".
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
DATABASE = os.environ.get("BENCH_DB", "leadrelay_bench")  # as bench.env.DB_NAME


@dataclass(frozen=True, slots=True)
class Sample:
    pid: int
    pgid: int
    name: str
    cpu_seconds: float
    rss_bytes: int


def _read(pid: int) -> Sample | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = stat[stat.index("(") + 1 : stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state): pgrp is field 5, utime 14, stime 15, rss 24
    return Sample(
        pid=pid,
        pgid=int(fields[2]),
        name=name,
        cpu_seconds=(int(fields[11]) + int(fields[12])) / TICKS,
        rss_bytes=int(fields[21]) * PAGE,
    )


def snapshot() -> list[Sample]:
    samples = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            sample = _read(int(entry))
            if sample is not None:
                samples.append(sample)
    return samples


def group_cpu(pgid: int) -> float:
    """CPU seconds used by the live members of a process group."""
    return sum(s.cpu_seconds for s in snapshot() if s.pgid == pgid)


def named_cpu(prefix: str) -> float:
    """CPU seconds of every process whose name starts with ``prefix`` (e.g. ``postgres``)."""
    return sum(s.cpu_seconds for s in snapshot() if s.name.startswith(prefix))


def server_cpu(pid: int) -> float:
    """CPU seconds of a server's process group, with its children's that exited and were reaped.

    For a server that forks a process per connection (Dovecot): a connection's
    process ends with its logout, and its CPU then shows in the parent's
    cutime/cstime (fields 16 and 17 of /proc/PID/stat).
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return group_cpu(int(fields[2])) + (int(fields[13]) + int(fields[14])) / TICKS


def backends_cpu(database: str) -> dict[int, float]:
    """CPU seconds of each live Postgres backend connected to ``database`` (its title names it), by pid.

    On a machine shared with other work this leaves out the other databases'
    backends, and also the server's own background writers (WAL, checkpoints).
    """
    found: dict[int, float] = {}
    for s in snapshot():
        if s.name.startswith("postgres"):
            try:
                title = Path(f"/proc/{s.pid}/cmdline").read_bytes()
            except OSError:
                continue
            if f" {database} ".encode() in title:
                found[s.pid] = s.cpu_seconds
    return found


def backends_used(start: dict[int, float], end: dict[int, float]) -> float:
    """CPU used meanwhile by the backends alive at the end (one that ended meanwhile is left out)."""
    return sum(cpu - start.get(pid, 0.0) for pid, cpu in end.items())


@dataclass
class PeakRss:
    """Samples the RSS of process groups in a thread; keeps each group's peak per process and in total."""

    groups: dict[str, int]
    interval: float = 0.2
    per_process: dict[str, int] = field(default_factory=dict)
    total: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> PeakRss:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            samples = snapshot()
            for label, pgid in self.groups.items():
                members = [s.rss_bytes for s in samples if s.pgid == pgid]
                if members:
                    self.per_process[label] = max(self.per_process.get(label, 0), max(members))
                    self.total[label] = max(self.total.get(label, 0), sum(members))
            self._stop.wait(self.interval)


class CpuMeter:
    """CPU seconds used between ``start`` and ``stop`` by named groups, and wall time."""

    def __init__(self, groups: dict[str, int], *, postgres: bool = True, database: str = DATABASE) -> None:
        self.groups = groups
        self.postgres = postgres
        self.database = database
        self.used: dict[str, float] = {}
        self.wall = 0.0

    def _now(self) -> dict[str, float]:
        readings = {label: group_cpu(pgid) for label, pgid in self.groups.items()}
        if self.postgres:
            readings["postgres"] = named_cpu("postgres")
        return readings

    def __enter__(self) -> CpuMeter:
        self._start, self._t0 = self._now(), time.monotonic()
        self._backends = backends_cpu(self.database) if self.postgres else {}
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._now()
        self.wall = time.monotonic() - self._t0
        self.used = {label: end[label] - self._start.get(label, 0.0) for label in end}
        if self.postgres:
            self.used["backends"] = backends_used(self._backends, backends_cpu(self.database))

    def cores(self, label: str) -> float:
        return self.used.get(label, 0.0) / self.wall if self.wall else 0.0
