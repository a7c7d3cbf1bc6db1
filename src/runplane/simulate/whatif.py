"""The dashboard's what-if: an endpoint's last hours replayed with its current settings and
with the cheapest swept settings meeting a delay target (``GET /v1/endpoints/{id}/whatif``).

Its work is bounded (``[limits] whatif_*``, docs/security.md): only the newest
``whatif_max_span_s`` of the asked window and the newest ``whatif_max_jobs`` jobs of it are
replayed, and every candidate's run counts its steps (events and controller ticks) against
one ``Budget`` of ``whatif_max_steps``; past it the sweep ends with the candidates it finished
(``candidatesTried`` of ``candidates``). The caller's budget also stops the replay when it is
cancelled (the client left, the server is stopping).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from runplane.config import Settings
from runplane.schemas.endpoints import Endpoint
from runplane.simulate import history, sweep
from runplane.simulate.budget import Budget, Exhausted
from runplane.simulate.engine import Candidate, Setup
from runplane.simulate.timing import empirical, parse_duration

# Without measured cold starts (a new installation): the docs' assumption, said so.
DEFAULT_COLD_START = "lognormal:12,0.3"


def endpoint_whatif(engine: Engine, endpoint: Endpoint, settings: Settings, now: float,
                    window_s: float, target_s: float, budget: Budget | None = None,
                    ) -> dict[str, Any]:
    """JSON for the endpoint page: the trace's size, the timing used, the current settings'
    outcome and the suggested settings with theirs (None when nothing swept meets the
    target, there were no jobs, or the current settings' run alone used the budget up).
    ``budget`` (default: ``whatif_max_steps``) bounds the work; cancelled, it raises
    ``Cancelled``."""
    limits = settings.limits
    budget = budget or Budget(limits.whatif_max_steps)
    span_s = min(window_s, limits.whatif_max_span_s)
    trace = history.endpoint_trace(engine, endpoint.id, now - span_s, limit=limits.whatif_max_jobs)
    measured = (history.measured_cold_starts(engine, endpoint.id)
                or history.measured_cold_starts(engine))
    cold = empirical(measured) if measured else parse_duration(DEFAULT_COLD_START)
    body: dict[str, Any] = {
        "jobs": len(trace.jobs), "windowS": window_s, "replayedS": span_s,
        "maxJobs": limits.whatif_max_jobs, "targetS": target_s,
        "coldStart": cold.describe(), "coldStartMeasured": bool(measured),
        "current": None, "suggested": None, "suggestedSettings": None,
    }
    if not trace.jobs:
        return body
    current = Candidate("current", endpoint.scalerType, endpoint.scalerValue,
                        endpoint.idleTimeout, endpoint.workersMin,
                        max(endpoint.workersMax, 1), endpoint.flashboot)
    setup = Setup(cold_start=cold, revival=parse_duration("0.05"),
                  gpus=max(endpoint.workersMax, 1), gpus_per_worker=endpoint.gpuCount,
                  usd_per_gpu_hr=settings.machine.cost_per_gpu_hr or 1.0,
                  controller=settings.controller)
    body["usdPerGpuHr"] = setup.usd_per_gpu_hr
    try:
        found = sweep.suggest(trace, current, setup, target_s, idle_timeouts=(1, 5, 15, 60),
                              workers_min=(0, 1), budget=budget)
    except Exhausted:
        body["steps"], body["candidatesTried"] = budget.steps, 0
        return body
    body["current"] = found.current.as_dict()
    body["candidates"], body["candidatesTried"] = found.grid, found.tried
    body["steps"] = budget.steps
    if found.best is not None and found.chosen is not None:
        body["suggested"] = found.best.as_dict()
        body["suggestedSettings"] = found.chosen.settings()
    return body
