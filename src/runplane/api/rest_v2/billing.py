"""/v2/billing and its breakdowns (pods, serverless, endpoints, network volumes, clusters),
from the same usage records as /v1/billing (``services.billing.breakdowns``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from runplane.api.rest_v2.common import User, V2Route, ok, services
from runplane.services.billing.breakdowns import BillingBreakdowns, empty, resolve_window

router = APIRouter(prefix="/v2/billing", tags=["billing"], route_class=V2Route)

Bucket = Annotated[Literal["hour", "day", "week", "month", "year"], Query()]
Time = Annotated[str | None, Query()]
LastN = Annotated[int | None, Query(ge=1)]


def _breakdowns(request: Request) -> BillingBreakdowns:
    found: BillingBreakdowns = request.app.state.billing_v2
    return found


@dataclass(frozen=True)
class Window:
    """The query every billing route takes: its bucket size and the [lo, hi) it covers."""

    bucket: str
    lo: datetime
    hi: datetime


def _window(request: Request, bucketSize: Bucket = "day", startTime: Time = None,
            endTime: Time = None, lastN: LastN = None) -> Window:
    lo, hi = resolve_window(services(request).clock.now(), bucketSize, startTime, endTime, lastN)
    return Window(bucketSize, lo, hi)


Query_ = Annotated[Window, Depends(_window)]


@router.get("")
async def billing(request: Request, user: User, q: Query_) -> Response:
    return ok(_breakdowns(request).total(user, q.bucket, q.lo, q.hi))


@router.get("/pods")
async def pod_billing(request: Request, user: User, q: Query_, podId: Time = None) -> Response:
    return ok(_breakdowns(request).breakdown(user, "pod", q.bucket, q.lo, q.hi, podId))


@router.get("/serverless")
async def serverless_billing(request: Request, user: User, q: Query_,
                             serverlessId: Time = None) -> Response:
    return ok(_breakdowns(request).breakdown(user, "endpoint", q.bucket, q.lo, q.hi,
                                             serverlessId))


@router.get("/network-volumes")
async def volume_billing(request: Request, user: User, q: Query_,
                         networkVolumeId: Time = None) -> Response:
    return ok(_breakdowns(request).breakdown(user, "networkvolume", q.bucket, q.lo, q.hi,
                                             networkVolumeId))


@router.get("/endpoints")
async def public_endpoint_billing(user: User, q: Query_) -> Response:
    """RunPod's public (hosted-model) endpoints: runplane has none, so no records."""
    return ok(empty("public", q.bucket, q.lo, q.hi, None))


@router.get("/clusters")
async def cluster_billing(user: User, q: Query_, clusterId: Time = None) -> Response:
    """Clusters do not exist here (docs/migration.md): no records."""
    return ok(empty("cluster", q.bucket, q.lo, q.hi, "clusterId"))
