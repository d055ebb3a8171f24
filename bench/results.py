"""One measured figure, with the baseline it is set against and the target it aims at."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Row:
    section: str  # "1. Ingest"
    metric: str  # what was measured, with its conditions
    value: float
    unit: str
    baseline: str | None = None  # what the value is set against, measured in the same run
    baseline_value: float | None = None
    target: str | None = None  # e.g. "≥ 2000"
    met: bool | None = None
    note: str = ""
    better: str = ""  # "higher" or "lower"; empty: by the unit (rates higher, times and sizes lower)

    @property
    def higher_is_better(self) -> bool:
        return self.better == "higher" if self.better else self.unit.startswith("/")

    @property
    def ratio(self) -> float | None:
        if self.baseline_value in (None, 0):
            return None
        return self.value / self.baseline_value  # type: ignore[operator]


@dataclass
class Run:
    started: str
    machine: dict[str, Any]
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        print(
            f"  {row.metric}: {row.value:,.2f} {row.unit}"
            + (f"  (baseline {row.baseline_value:,.2f})" if row.baseline_value is not None else ""),
            flush=True,
        )
        return row

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({**asdict(self)}, indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> Run:
        data = json.loads(path.read_text())
        return cls(
            started=data["started"],
            machine=data["machine"],
            rows=[Row(**row) for row in data["rows"]],
            notes=data.get("notes", []),
        )


def at_least(value: float, target: float) -> bool:
    return value >= target


def at_most(value: float, target: float) -> bool:
    return value <= target
