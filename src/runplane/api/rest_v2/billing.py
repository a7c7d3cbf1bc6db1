"""/v2/billing and its breakdowns (pods, serverless, endpoints, network volumes, clusters),
from the same usage records as /v1/billing (``services.billing_v2``)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from runplane.api.rest_v2.common import User, V2Route, ok, services
from runplane.services.billing_v2 import BillingBreakdowns, empty, resolve_window

router = APIRouter(prefix="/v2/billing", tags=["billing"], route_class=V2Route)

Bucket = Annotated[Literal["hour", "day", "week", "month", "year"], Query()]
Time = Annotated[str | None, Query()]
LastN = Annotated[int | None, Query(ge=1)]


def _breakdowns(request: Request) -> BillingBreakdowns:
    found: BillingBreakdowns = request.app.state.billing_v2
    return found


def _window(request: Request, bucket: str, start: str | None, end: str | None,
            last_n: int | None):  # type: ignore[no-untyped-def]
    return resolve_window(services(request).clock.now(), bucket, start, end, last_n)


@router.get("")
async def billing(request: Request, user: User, bucketSize: Bucket = "day",
                  startTime: Time = None, endTime: Time = None, lastN: LastN = None) -> Response:
    lo, hi = _window(request, bucketSize, startTime, endTime, lastN)
    return ok(_breakdowns(request).total(user, bucketSize, lo, hi))


@router.get("/pods")
async def pod_billing(request: Request, user: User, bucketSize: Bucket = "day",
                      startTime: Time = None, endTime: Time = None, lastN: LastN = None,
                      podId: Time = None) -> Response:
    lo, hi = _window(request, bucketSize, startTime, endTime, lastN)
    return ok(_breakdowns(request).breakdown(user, "pod", bucketSize, lo, hi, podId))


@router.get("/serverless")
async def serverless_billing(request: Request, user: User, bucketSize: Bucket = "day",
                             startTime: Time = None, endTime: Time = None, lastN: LastN = None,
                             serverlessId: Time = None) -> Response:
    lo, hi = _window(request, bucketSize, startTime, endTime, lastN)
    return ok(_breakdowns(request).breakdown(user, "endpoint", bucketSize, lo, hi, serverlessId))


@router.get("/network-volumes")
async def volume_billing(request: Request, user: User, bucketSize: Bucket = "day",
                         startTime: Time = None, endTime: Time = None, lastN: LastN = None,
                         networkVolumeId: Time = None) -> Response:
    lo, hi = _window(request, bucketSize, startTime, endTime, lastN)
    return ok(_breakdowns(request).breakdown(user, "networkvolume", bucketSize, lo, hi,
                                             networkVolumeId))


@router.get("/endpoints")
async def public_endpoint_billing(request: Request, user: User, bucketSize: Bucket = "day",
                                  startTime: Time = None, endTime: Time = None,
                                  lastN: LastN = None) -> Response:
    """RunPod's public (hosted-model) endpoints: runplane has none, so no records."""
    lo, hi = _window(request, bucketSize, startTime, endTime, lastN)
    return ok(empty("public", bucketSize, lo, hi, None))


@router.get("/clusters")
async def cluster_billing(request: Request, user: User, bucketSize: Bucket = "day",
                          startTime: Time = None, endTime: Time = None, lastN: LastN = None,
                          clusterId: Time = None) -> Response:
    """Clusters do not exist here (docs/migration.md): no records."""
    lo, hi = _window(request, bucketSize, startTime, endTime, lastN)
    return ok(empty("cluster", bucketSize, lo, hi, "clusterId"))
