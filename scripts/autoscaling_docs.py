#!/usr/bin/env python3
"""Regenerate the tables and plots of docs/autoscaling.md: the scalers on the four seeded
traces (``runplane simulate``'s engine), PNGs into docs/autoscaling/, Markdown to stdout.

    .venv/bin/python scripts/autoscaling_docs.py > /tmp/tables.md
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from runplane.simulate import generators, report, sweep
from runplane.simulate.engine import Candidate, Setup
from runplane.simulate.timing import parse_duration

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "autoscaling"
TARGET_S = 10.0
SETUP = Setup(cold_start=parse_duration("lognormal:12,0.3"), revival=parse_duration("0.05"),
              gpus=10, usd_per_gpu_hr=1.0)
BASE = Candidate("base", "QUEUE_DELAY", 4, idle_timeout_s=5, workers_min=0, workers_max=10,
                 flashboot=True)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    candidates = sweep.policy_candidates(BASE)
    # What the ADAPTIVE gain owes to parking early: RunPod's rule with the same 1 s.
    candidates.append(replace(candidates[0], label="QUEUE_DELAY 4s, idle 1s",
                              idle_timeout_s=1))
    for name in generators.GENERATORS:
        trace = generators.generate(name)
        runs = sweep.evaluate(trace, candidates, SETUP, TARGET_S)
        outcomes = [o for o, _ in runs]
        print(f"### {name}: {len(trace.jobs)} jobs over {trace.duration_s / 3600:.1f} h\n")
        print(report.markdown(outcomes, TARGET_S) + "\n")
        report.plot_timeline(OUT / f"{name}-timeline.png", trace.name, runs[:5])
        report.plot_cost_vs_delay(OUT / f"{name}-cost-vs-p95.png", trace.name, outcomes,
                                  TARGET_S)


if __name__ == "__main__":
    main()
