"""What-if autoscaling for the dashboard (a runplane extension; docs/autoscaling.md): the
endpoint's recent jobs replayed through the autoscaler with its settings and suggested ones.

A replay is seconds of CPU, so (docs/security.md): ``[limits] whatif_per_minute`` per API
key, one in flight per key and ``whatif_concurrent`` in all (429 past them); a result is
reused for ``whatif_cache_s`` per endpoint, its settings and the query; the work itself is
bounded by ``simulate/whatif.py``. It runs in a thread under a ``Budget`` that is cancelled
when the client disconnects, when this request is cancelled, or when the server is told to
stop (``simulate.budget.cancel_all``), so no replay outlives the one who asked.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from runplane.api.http.responses import json_response
from runplane.api.v1 import ERRORS, caller, services
from runplane.errors import RateLimited, Unavailable
from runplane.schemas.endpoints import Endpoint
from runplane.services.users import Principal
from runplane.simulate.budget import Budget, Cancelled
from runplane.simulate.whatif import endpoint_whatif

router = APIRouter(tags=["what-if (runplane)"], responses=ERRORS)
User = Annotated[Principal, Depends(caller)]
CACHE_ENTRIES = 256
# (endpoint, its settings, window, target) -> (monotonic time computed, body)
_cache: OrderedDict[tuple[Any, ...], tuple[float, dict[str, Any]]] = OrderedDict()


@router.get("/v1/endpoints/{endpointId}/whatif",
            summary="The endpoint's recent jobs replayed with current and suggested settings")
async def endpoint_what_if(
    request: Request,
    endpointId: str,
    user: User,
    window: Annotated[int, Query(ge=60, le=7 * 86400, description="Seconds of history.")] = 86400,
    target: Annotated[float, Query(gt=0, le=3600, description="p95 queue-wait target, s.")] = 10.0,
) -> Response:
    """Cost, cold starts and queue waits of the current settings, and the cheapest settings
    (scaler, value, idle timeout, workersMin) whose p95 wait meets ``target``."""
    svc = services(request)
    ep = svc.endpoints.get_for(user, endpointId)  # 404 unless the caller's
    limits, settings = svc.limits, svc.settings.limits
    who = ("whatif", user.key_id or user.user_id)
    key = _cache_key(ep, window, target)
    hit = _cache.get(key)
    if hit is not None and time.monotonic() - hit[0] < settings.whatif_cache_s:
        return json_response(hit[1])
    limits.check(limits.whatif, who, "what-if replays for this key")
    if not limits.whatif_inflight.acquire(who):
        raise RateLimited(1.0, "a what-if replay of this key is already running")
    if not limits.whatif_total.acquire(limits.ALL):
        limits.whatif_inflight.release(who)
        raise RateLimited(1.0, f"{settings.whatif_concurrent} what-if replays are running")
    budget = Budget(settings.whatif_max_steps)
    work = asyncio.ensure_future(asyncio.to_thread(
        endpoint_whatif, svc.engine, ep, svc.settings, svc.clock.now(), float(window), target,
        budget))

    def released(_: object) -> None:  # when the thread has really stopped, not before
        limits.whatif_inflight.release(who)
        limits.whatif_total.release(limits.ALL)

    work.add_done_callback(released)
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait((work, gone), return_when=asyncio.FIRST_COMPLETED)
    finally:  # also when this request is cancelled
        gone.cancel()
        if not work.done():
            budget.cancel()
    try:
        body = await work
    except Cancelled:
        raise Unavailable("the what-if replay was stopped: the client left or the server is "
                          "stopping") from None
    if body.get("current") is not None:  # nothing to replay costs nothing: never kept, so
        _remember(key, body)             # the first jobs after it are replayed at once
    return json_response(body)


def _cache_key(ep: Endpoint, window: int, target: float) -> tuple[Any, ...]:
    return (ep.id, ep.scalerType, ep.scalerValue, ep.idleTimeout, ep.workersMin,
            ep.workersMax, ep.flashboot, ep.gpuCount, window, target)


def _remember(key: tuple[Any, ...], body: dict[str, Any]) -> None:
    _cache[key] = (time.monotonic(), body)
    _cache.move_to_end(key)
    while len(_cache) > CACHE_ENTRIES:
        _cache.popitem(last=False)


async def _disconnected(request: Request) -> None:
    """Return once the client has gone (the ASGI server's ``http.disconnect``)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
