"""Per-endpoint statistics over time for the dashboard (a runplane extension of RunPod's API;
docs/observability.md). History is in memory and restarts with the server."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from runplane.api.http.responses import json_response
from runplane.api.v1 import ERRORS, caller, services
from runplane.observability.stats import MAX_WINDOW_S
from runplane.services.users import Principal

router = APIRouter(tags=["stats (runplane)"], responses=ERRORS)
User = Annotated[Principal, Depends(caller)]


@router.get("/v1/endpoints/{endpointId}/stats", summary="An endpoint's statistics over time")
async def endpoint_stats(
    request: Request,
    endpointId: str,
    user: User,
    window: Annotated[int, Query(ge=1, le=MAX_WINDOW_S,
                                 description="Seconds of history, up to 86400.")] = 3600,
) -> Response:
    """One point per bucket (10 s up to 1 h, 60 s up to 6 h, 300 s beyond), oldest first:
    jobs submitted/completed/failed, delay and execution percentiles (ms), cold starts,
    workers by state and queue depth."""
    svc = services(request)
    svc.endpoints.get_for(user, endpointId)  # 404 unless the caller's
    return json_response(svc.observability.endpoint_stats(endpointId, window))
