"""What-if autoscaling for the dashboard (a runplane extension; docs/autoscaling.md): the
endpoint's recent jobs replayed through the autoscaler with its settings and suggested ones."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from runplane.api.responses import json_response
from runplane.api.v1 import ERRORS, caller, services
from runplane.services.users import Principal
from runplane.simulate.whatif import endpoint_whatif

router = APIRouter(tags=["what-if (runplane)"], responses=ERRORS)
User = Annotated[Principal, Depends(caller)]


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
    body = await asyncio.to_thread(endpoint_whatif, svc.engine, ep, svc.settings,
                                   svc.clock.now(), float(window), target)
    return json_response(body)
