"""Job listing and the job page (runplane extensions of RunPod's API; docs/observability.md).

``GET /v1/endpoints/{endpointId}/jobs`` lists an endpoint's jobs as ``/status`` job objects;
``GET /v1/jobs/{jobId}`` is one job with its endpoint, times, input and stream chunks.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from runplane.api.http.errors import not_found
from runplane.api.http.responses import json_response
from runplane.api.v1 import ERRORS, caller, services
from runplane.api.v1.job_queries import job_detail, list_jobs
from runplane.services.access import can_see
from runplane.services.users import Principal

router = APIRouter(tags=["jobs (runplane)"], responses=ERRORS)
User = Annotated[Principal, Depends(caller)]
Status = Literal["IN_QUEUE", "IN_PROGRESS", "COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"]
InputFlag = Annotated[bool, Query(description="Include each job's `input`.")]


@router.get("/v1/endpoints/{endpointId}/jobs", summary="List an endpoint's jobs")
async def endpoint_jobs(
    request: Request,
    endpointId: str,
    user: User,
    status: Annotated[Status | None, Query(description="Only jobs in this state.")] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="At most this many jobs.")] = 50,
    includeInput: InputFlag = False,
) -> Response:
    """Newest first (IN_QUEUE: oldest first, the order they will be taken in). Jobs are listed
    while they are retained: final ones until their result retention ends."""
    svc = services(request)
    svc.endpoints.get_for(user, endpointId)  # 404 unless the caller's
    jobs = list_jobs(svc, endpointId, status, limit, includeInput)
    return json_response({"endpointId": endpointId, "status": status, "limit": limit,
                          "jobs": jobs})


@router.get("/v1/jobs/{jobId}", summary="Get a job with its input, times and stream chunks")
async def get_job(request: Request, jobId: str, user: User, includeInput: InputFlag = False) -> Response:
    svc = services(request)
    job = svc.broker.find(jobId)
    if job is None or not can_see(user, job.user_id):
        raise not_found("job", jobId)
    return json_response(job_detail(svc, job, includeInput))
