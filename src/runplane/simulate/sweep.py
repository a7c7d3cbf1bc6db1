"""Which candidates to run, and the cheapest one that meets a delay target.

``policy_candidates``: the five scalers side by side with the endpoint's other settings:
RunPod's QUEUE_DELAY (at the endpoint's scalerValue) and REQUEST_COUNT (one job per
worker), the Knative-KPA-like and Ray-Serve-like ones (target one job per worker, as RunPod
workers run one at a time) and runplane's ADAPTIVE (the same delay target as QUEUE_DELAY).
``sweep_candidates``: a grid over idle timeout, scaler value and workersMin per scaler type.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from itertools import product

from runplane.simulate.budget import Budget, Exhausted
from runplane.simulate.engine import Candidate, Setup, simulate
from runplane.simulate.outcome import Outcome, outcome_of
from runplane.simulate.trace import Trace
from runplane.simulate.world import Ledger

SCALER_TYPES = ("QUEUE_DELAY", "REQUEST_COUNT", "KNATIVE_KPA", "RAY_SERVE", "ADAPTIVE")
# What each scaler's value means, for labels.
_UNIT = {"QUEUE_DELAY": "s", "REQUEST_COUNT": " jobs/worker", "KNATIVE_KPA": " in flight/worker",
         "RAY_SERVE": " ongoing/worker", "ADAPTIVE": "s target"}
SWEEP_VALUES = {"QUEUE_DELAY": (1, 2, 4, 8), "REQUEST_COUNT": (1, 2, 4),
                "KNATIVE_KPA": (1, 2), "RAY_SERVE": (1, 2), "ADAPTIVE": (1, 2, 4, 8)}
SWEEP_IDLE = (1, 2, 5, 15, 60)
SWEEP_MIN = (0, 1)


def label(c: Candidate, with_settings: bool = False) -> str:
    """``QUEUE_DELAY 4s`` (and the other settings when ``with_settings``)."""
    text = f"{c.scaler_type} {c.scaler_value:g}{_UNIT.get(c.scaler_type, '')}"
    if with_settings:
        text += (f", idle {c.idle_timeout_s:g}s, min {c.workers_min}, max {c.workers_max}"
                 + ("" if c.flashboot else ", no FlashBoot"))
    return text


def named(c: Candidate, with_settings: bool = False) -> Candidate:
    """``c`` labelled by its settings."""
    return replace(c, label=label(c, with_settings))


def policy_candidates(base: Candidate, scaler_types: Sequence[str] = SCALER_TYPES) -> list[Candidate]:
    """One candidate per scaler type, the other settings as ``base``'s (module docstring)."""
    out = []
    for kind in scaler_types:
        value = base.scaler_value if kind in ("QUEUE_DELAY", "ADAPTIVE") else 1
        out.append(named(replace(base, scaler_type=kind, scaler_value=value)))
    return out


def sweep_candidates(base: Candidate, scaler_types: Sequence[str] = SCALER_TYPES,
                     idle_timeouts: Iterable[int] = SWEEP_IDLE,
                     workers_min: Iterable[int] = SWEEP_MIN) -> list[Candidate]:
    """The grid of the module docstring (workersMax and FlashBoot as ``base``'s)."""
    idle, mins = list(idle_timeouts), list(workers_min)
    return [named(replace(base, scaler_type=kind, scaler_value=value, idle_timeout_s=i,
                          workers_min=m), with_settings=True)
            for kind in scaler_types for value, i, m in product(SWEEP_VALUES[kind], idle, mins)
            if m <= base.workers_max]


def meets(o: Outcome, target_s: float) -> bool:
    """Its p95 queue wait is within the target and every job was served."""
    return o.p95_s <= target_s and not o.unserved


def cheapest(outcomes: Iterable[Outcome], target_s: float) -> Outcome | None:
    """The lowest-cost outcome meeting the target (ties: fewer GPU-seconds, lower p95)."""
    ok = [o for o in outcomes if meets(o, target_s)]
    return min(ok, key=lambda o: (round(o.usd, 6), o.gpu_s, o.p95_s), default=None)


def evaluate(trace: Trace, candidates: Sequence[Candidate], setup: Setup, target_s: float,
             progress: Callable[[int, int], None] | None = None,
             budget: Budget | None = None) -> list[tuple[Outcome, Ledger]]:
    """Each candidate's outcome on ``trace`` (and its ledger, for plots), in order; every
    run's steps counted against ``budget``."""
    out = []
    for i, c in enumerate(candidates):
        ledger = simulate(trace, c, setup, budget)
        out.append((outcome_of(c.label, ledger, target_s), ledger))
        if progress is not None:
            progress(i + 1, len(candidates))
    return out


def suggest(trace: Trace, current: Candidate, setup: Setup, target_s: float,
            scaler_types: Sequence[str] = ("QUEUE_DELAY", "REQUEST_COUNT", "ADAPTIVE"),
            idle_timeouts: Iterable[int] = SWEEP_IDLE, workers_min: Iterable[int] = SWEEP_MIN,
            budget: Budget | None = None) -> Suggestion:
    """The current settings' outcome, and the cheapest swept one meeting the target (with
    its settings), None when none does. Only the scalers an endpoint can be set to.

    With a ``budget``: a grid run that exhausts it ends the sweep, and the suggestion is the
    cheapest of the candidates finished before (``tried`` of ``grid``); the current settings'
    run exhausting it raises ``Exhausted``."""
    now = evaluate(trace, [named(current, with_settings=True)], setup, target_s,
                   budget=budget)[0][0]
    grid = sweep_candidates(current, scaler_types, idle_timeouts, workers_min)
    # A spread order, so that a sweep the budget ends early has sampled every scaler and
    # setting rather than the grid's first rows; ties go to the grid's order as before.
    order = list(range(len(grid)))
    random.Random(0).shuffle(order)
    done: list[tuple[int, Outcome]] = []
    try:
        for i in order:
            done.append((i, evaluate(trace, [grid[i]], setup, target_s, budget=budget)[0][0]))
    except Exhausted:
        pass
    ok = [(i, o) for i, o in done if meets(o, target_s)]
    pick = min(ok, key=lambda r: (round(r[1].usd, 6), r[1].gpu_s, r[1].p95_s, r[0]), default=None)
    best, chosen = (pick[1], grid[pick[0]]) if pick else (None, None)
    return Suggestion(now, best, chosen, len(done), len(grid))


@dataclass(frozen=True)
class Suggestion:
    """``suggest``'s answer: the current outcome, the best swept one and its settings, and
    how many of the grid's candidates ran."""

    current: Outcome
    best: Outcome | None
    chosen: Candidate | None
    tried: int
    grid: int
