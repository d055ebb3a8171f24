"""The run as Markdown (bench/results/latest.md) and as a plot (bench/results/latest.png)."""

from __future__ import annotations

import math
from pathlib import Path

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


def plot(run: Run, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in run.rows if r.baseline_value not in (None, 0) and not math.isnan(r.value)]
    fig, ax = plt.subplots(figsize=(12, 0.55 * len(rows) + 1.8))
    labels = [f"{r.section}: {r.metric[:70]}" for r in rows]
    ratios = [r.ratio or 0.0 for r in rows]
    colours = ["#2a9d8f" if r.met is not False else "#e76f51" for r in rows]
    ax.barh(range(len(rows)), ratios, color=colours)
    for y, (ratio, row) in enumerate(zip(ratios, rows, strict=True)):
        ax.text(ratio, y, f"  {ratio:.3g}  ({_number(row.value, row.unit)} vs {_number(row.baseline_value)})",
                va="center", fontsize=8)  # fmt: skip
    ax.axvline(1.0, color="grey", linewidth=0.8, linestyle="--")
    ax.set_yticks(range(len(rows)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlim(min([*ratios, 0.1]) / 2, max([*ratios, 1.0]) * 200)
    ax.set_xlabel("value / same-run baseline (log scale); red: target not met")
    ax.set_title(f"leadrelay benchmarks, {run.started}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(run: Run, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    run.save(folder / "latest.json")
    (folder / "latest.md").write_text(markdown(run))
    plot(run, folder / "latest.png")
    return folder / "latest.md"
