"""/v1/workers/{workerId}/logs: a serverless worker's output (runplane extension).

Workers are listed as Pods by ``GET /v1/endpoints/{id}?includeWorkers=true``; this answers the
tail of the log the provider writes for one of them, like ``GET /v1/pods/{podId}/logs`` does for
pods. A worker of another user is a 404. ``runplane logs`` reads it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import select
from starlette.responses import PlainTextResponse, Response

from runplane.api.http.errors import not_found
from runplane.api.v1 import ERRORS, caller, services
from runplane.services.access import can_see
from runplane.services.users import Principal
from runplane.store.tables import workers

router = APIRouter(prefix="/v1/workers", tags=["workers"], responses=ERRORS)
User = Annotated[Principal, Depends(caller)]


@router.get("/{workerId}/logs", summary="A worker's output (runplane extension)")
async def worker_logs(
    request: Request,
    workerId: str,
    user: User,
    tail: Annotated[int, Query(ge=1, le=4_194_304, description="Bytes from the end.")] = 65536,
) -> Response:
    svc = services(request)
    with svc.engine.connect() as conn:
        row = conn.execute(select(workers.c.user_id).where(workers.c.id == workerId)).first()
    if row is None or not can_see(user, row.user_id):
        raise not_found("worker", workerId)
    return PlainTextResponse(svc.provider.logs(workerId, tail))
