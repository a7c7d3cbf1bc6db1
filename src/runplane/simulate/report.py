"""The simulator's output: a rich table of outcomes, and PNG plots (matplotlib, optional:
``pip install 'runplane[simulate]'``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

from runplane.simulate.outcome import Outcome, delays_over_time
from runplane.simulate.world import Ledger

MISSING_MATPLOTLIB = ("plots need matplotlib: pip install 'runplane[simulate]' "
                      "(or pip install matplotlib)")


def table(title: str, outcomes: Sequence[Outcome], target_s: float,
          best: Outcome | None = None) -> Table:
    """One row per candidate; ``best`` (the sweep's pick) marked."""
    t = Table(title=title)
    for name in ("candidate", "GPU-s", "cost $", "cold starts", "revivals", "p50 s", "p95 s",
                 "p99 s", "worst s", f"> {target_s:g}s", "peak workers"):
        t.add_column(name, justify="left" if name == "candidate" else "right")
    for o in outcomes:
        mark = " [bold green](cheapest meeting target)[/]" if best is not None and o is best else ""
        t.add_row(o.label + mark, f"{o.gpu_s:,.0f}", f"{o.usd:,.2f}", str(o.cold_starts),
                  str(o.revivals), f"{o.p50_s:.2f}", f"{o.p95_s:.2f}", f"{o.p99_s:.2f}",
                  f"{o.worst_s:.1f}", str(o.over_target), str(o.peak_workers))
    return t


def markdown(outcomes: Sequence[Outcome], target_s: float) -> str:
    """The same table in Markdown, for docs."""
    head = ("| candidate | GPU-s | cost $ | cold starts | revivals | p50 s | p95 s | p99 s | "
            f"worst s | > {target_s:g}s | peak workers |")
    rows = [head, "|" + "---|" * 11]
    for o in outcomes:
        rows.append(f"| {o.label} | {o.gpu_s:,.0f} | {o.usd:,.2f} | {o.cold_starts} | "
                    f"{o.revivals} | {o.p50_s:.2f} | {o.p95_s:.2f} | {o.p99_s:.2f} | "
                    f"{o.worst_s:.1f} | {o.over_target} | {o.peak_workers} |")
    return "\n".join(rows)


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise RuntimeError(MISSING_MATPLOTLIB) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_timeline(path: Path, title: str, runs: Sequence[tuple[Outcome, Ledger]]) -> Path:
    """Queue wait of each job over time (top) and running workers over time (bottom)."""
    plt = _pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 6.5), sharex=True)
    for o, ledger in runs:
        xs, ys = delays_over_time(ledger)
        top.scatter([x / 60 for x in xs], ys, s=4, alpha=0.6, label=o.label)
        series = ledger.series
        bottom.step([t / 60 for t, _, _ in series], [live for _, live, _ in series],
                    where="post", linewidth=1, label=o.label)
    top.set_ylabel("queue wait (s)")
    top.set_yscale("symlog", linthresh=1)
    top.legend(fontsize=7, markerscale=3, loc="upper right")
    top.set_title(title)
    bottom.set_ylabel("running workers")
    bottom.set_xlabel("minutes into the trace")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_cost_vs_delay(path: Path, title: str, outcomes: Sequence[Outcome],
                       target_s: float) -> Path:
    """Each candidate as a point: cost against p95 queue wait, the target as a line."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    for o in outcomes:
        ax.scatter(o.p95_s, o.usd, s=30)
        ax.annotate(o.label, (o.p95_s, o.usd), fontsize=7, xytext=(4, 3),
                    textcoords="offset points")
    ax.axvline(target_s, color="grey", linestyle="--", linewidth=1)
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlabel("p95 queue wait (s)")
    ax.set_ylabel("cost ($)")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
