"""Which candidates to run, and the cheapest one that meets a delay target.

``policy_candidates``: the five scalers side by side with the endpoint's other settings:
RunPod's QUEUE_DELAY (at the endpoint's scalerValue) and REQUEST_COUNT (one job per
worker), the Knative-KPA-like and Ray-Serve-like ones (target one job per worker, as RunPod
workers run one at a time) and runplane's ADAPTIVE (the same delay target as QUEUE_DELAY).
``sweep_candidates``: a grid over idle timeout, scaler value and workersMin per scaler type.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from itertools import product

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
             progress: Callable[[int, int], None] | None = None) -> list[tuple[Outcome, Ledger]]:
    """Each candidate's outcome on ``trace`` (and its ledger, for plots), in order."""
    out = []
    for i, c in enumerate(candidates):
        ledger = simulate(trace, c, setup)
        out.append((outcome_of(c.label, ledger, target_s), ledger))
        if progress is not None:
            progress(i + 1, len(candidates))
    return out


def suggest(trace: Trace, current: Candidate, setup: Setup, target_s: float,
            scaler_types: Sequence[str] = ("QUEUE_DELAY", "REQUEST_COUNT", "ADAPTIVE"),
            idle_timeouts: Iterable[int] = SWEEP_IDLE, workers_min: Iterable[int] = SWEEP_MIN,
            ) -> tuple[Outcome, Outcome | None, Candidate | None]:
    """The current settings' outcome, and the cheapest swept one meeting the target (with
    its settings), None when none does. Only the scalers an endpoint can be set to."""
    now = evaluate(trace, [named(current, with_settings=True)], setup, target_s)[0][0]
    grid = sweep_candidates(current, scaler_types, idle_timeouts, workers_min)
    runs = evaluate(trace, grid, setup, target_s)
    best = cheapest([o for o, _ in runs], target_s)
    chosen = next((c for c, (o, _) in zip(grid, runs, strict=True) if o is best), None)
    return now, best, chosen
