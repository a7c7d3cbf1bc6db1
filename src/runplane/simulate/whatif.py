"""The dashboard's what-if: an endpoint's last hours replayed with its current settings and
with the cheapest swept settings meeting a delay target (``GET /v1/endpoints/{id}/whatif``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from runplane.config import Settings
from runplane.schemas.endpoints import Endpoint
from runplane.simulate import history, sweep
from runplane.simulate.engine import Candidate, Setup
from runplane.simulate.timing import empirical, parse_duration

# Without measured cold starts (a new installation): the docs' assumption, said so.
DEFAULT_COLD_START = "lognormal:12,0.3"
MAX_JOBS = 20_000  # the newest; beyond this the what-if would take too long for a page


def endpoint_whatif(engine: Engine, endpoint: Endpoint, settings: Settings, now: float,
                    window_s: float, target_s: float) -> dict[str, Any]:
    """JSON for the endpoint page: the trace's size, the timing used, the current settings'
    outcome and the suggested settings with theirs (None when nothing swept meets the
    target or there were no jobs)."""
    trace = history.endpoint_trace(engine, endpoint.id, now - window_s)
    if len(trace.jobs) > MAX_JOBS:
        trace = type(trace)(trace.name, trace.jobs[-MAX_JOBS:])
    measured = (history.measured_cold_starts(engine, endpoint.id)
                or history.measured_cold_starts(engine))
    cold = empirical(measured) if measured else parse_duration(DEFAULT_COLD_START)
    body: dict[str, Any] = {
        "jobs": len(trace.jobs), "windowS": window_s, "targetS": target_s,
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
    now_outcome, best, chosen = sweep.suggest(trace, current, setup, target_s,
                                              idle_timeouts=(1, 5, 15, 60), workers_min=(0, 1))
    body["current"] = now_outcome.as_dict()
    body["usdPerGpuHr"] = setup.usd_per_gpu_hr
    if best is not None and chosen is not None:
        body["suggested"] = best.as_dict()
        body["suggestedSettings"] = chosen.settings()
    return body
