"""The run as Markdown (bench/results/latest.md) and as a plot (bench/results/latest.png)."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any

from bench.results import Row, Run

HEADER = "| metric | value | baseline (same run) | ratio | target | met? |\n|---|---|---|---|---|---|\n"


def _number(value: float | None, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}" if abs(value) < 10 else f"{value:,.1f}"
    return f"{text} {unit}".strip() if unit and unit != "/s" else f"{text}{unit}"


def _met(row: Row) -> str:
    return "—" if row.met is None else ("yes" if row.met else "**no**")


def table(run: Run) -> str:
    lines = [HEADER]
    for row in run.rows:
        baseline = "—"
        if row.baseline:
            baseline = f"{_number(row.baseline_value, row.unit)} — {row.baseline}"
        ratio = f"{row.ratio:.3g}" if row.ratio is not None else "—"
        metric = f"**{row.section}** {row.metric}"
        lines.append(
            f"| {metric} | {_number(row.value, row.unit)} | {baseline} | {ratio} | {row.target or '—'} | "
            f"{_met(row)} |\n"
        )
    return "".join(lines)


def markdown(run: Run) -> str:
    machine = ", ".join(f"{k}: {v}" for k, v in run.machine.items())
    notes = "".join(f"- {row.section} — {row.metric}: {row.note}\n" for row in run.rows if row.note)
    extra = "".join(f"- {note}\n" for note in run.notes)
    return (
        f"# leadrelay benchmarks\n\nRun {run.started}; {machine}.\n\n"
        "Produced by `python -m bench` (see bench/README.md). Each value is set against a baseline"
        " measured in the same run on the same machine; ratio = value / baseline. Timings are"
        " measurements, never pass/fail tests.\n\n"
        f"{table(run)}\n## Notes\n\n{notes}{extra}"
    )


def _label(row: Row) -> str:
    """The row's section and metric, wrapped to a few short lines (legible beside a bar)."""
    return textwrap.fill(f"{row.section}: {row.metric}", width=48, max_lines=3, placeholder=" …")


def _panel(ax: Any, rows: list[Row], *, higher: bool) -> None:
    ratios = [r.ratio or 0.0 for r in rows]
    colours = ["#2a9d8f" if r.met is not False else "#e76f51" for r in rows]
    ax.barh(range(len(rows)), ratios, color=colours, height=0.6)
    for y, (ratio, row) in enumerate(zip(ratios, rows, strict=True)):
        text = f" {ratio:.3g}×  ({_number(row.value, row.unit)} vs {_number(row.baseline_value, row.unit)})"
        ax.text(ratio, y, text, va="center", fontsize=9)
    ax.axvline(1.0, color="grey", linewidth=0.8, linestyle="--")
    ax.set_yticks(range(len(rows)), [_label(r) for r in rows], fontsize=9)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlim(min([*ratios, 0.5]) / 2, max([*ratios, 1.0]) * 30)
    way = (
        "higher is better (≤ 1: short of the baseline)"
        if higher
        else "lower is better (≥ 1: above the baseline)"
    )
    ax.set_title(f"{'Rates' if higher else 'Times, CPU and memory'}: {way}", fontsize=10, loc="left")
    ax.set_xlabel("leadrelay ÷ same-run baseline (log scale); red: target not met", fontsize=9)


def plot(run: Run, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [
        r for r in run.rows if r.baseline_value not in (None, 0) and not math.isnan(r.value) and r.value > 0
    ]
    panels = [
        (True, [r for r in rows if r.higher_is_better]),
        (False, [r for r in rows if not r.higher_is_better]),
    ]
    panels = [(higher, some) for higher, some in panels if some]
    if not panels:
        return
    heights = [len(some) * 0.75 + 1.2 for _, some in panels]
    fig, axes = plt.subplots(
        len(panels),
        1,
        figsize=(13, sum(heights) + 0.6),
        gridspec_kw={"height_ratios": heights},
        squeeze=False,
    )
    for ax, (higher, some) in zip(axes[:, 0], panels, strict=True):
        _panel(ax, some, higher=higher)
    load, cores = run.machine.get("load at start", "?"), run.machine.get("cores", "?")
    title = f"leadrelay benchmarks, {run.started}; load average at the start {load} on {cores} cores"
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(run: Run, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    run.save(folder / "latest.json")
    (folder / "latest.md").write_text(markdown(run))
    plot(run, folder / "latest.png")
    return folder / "latest.md"
