"""/v1/billing/{endpoints,pods,networkvolumes}: usage aggregated per time bucket."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel
from starlette.responses import Response

from runplane.api.http.responses import json_response
from runplane.api.v1 import ERRORS, JsonBodyRoute, caller, services
from runplane.schemas.billing import BillingQuery, BucketSize, EndpointGrouping, PodGrouping
from runplane.services.billing.records import BillingService
from runplane.services.billing.query import build_query
from runplane.services.users import Principal

router = APIRouter(
    prefix="/v1/billing", tags=["billing"], responses=ERRORS, route_class=JsonBodyRoute
)
User = Annotated[Principal, Depends(caller)]
Bucket = Annotated[BucketSize, Query(description="Length of each bucket (UTC; weeks start Monday).")]
Start = Annotated[str | None, Query(description="ISO 8601; default endTime minus 30 days.")]
End = Annotated[str | None, Query(description="ISO 8601; default now.")]


Report = Callable[[BillingService, Principal, BillingQuery], list[dict[str, Any]]]


def _report(request: Request, user: Principal, report: Report, **query: Any) -> Response:
    """``report`` of the billing service over the buckets ``query`` asks for (build_query)."""
    svc = services(request)
    return json_response(report(svc.billing, user, build_query(svc.catalog, svc.clock.now(),
                                                                 **query)))


class BillingRecordOut(BaseModel):
    """The spec's BillingRecord (documentation only)."""

    time: str
    amount: float
    timeBilledMs: int
    diskSpaceBilledGb: int
    endpointId: str | None = None
    podId: str | None = None
    gpuTypeId: str | None = None


class NetworkVolumeBillingRecordOut(BaseModel):
    """The spec's NetworkVolumeBillingRecord (documentation only)."""

    time: str
    amount: float
    diskSpaceBilledGb: int
    highPerformanceStorageAmount: float
    highPerformanceStorageDiskSpaceBilledGb: int


@router.get("/endpoints", summary="Serverless billing history",
            responses={200: {"model": list[BillingRecordOut]}})
async def endpoint_billing(
    request: Request,
    user: User,
    bucketSize: Bucket = "day",
    startTime: Start = None,
    endTime: End = None,
    grouping: EndpointGrouping = "endpointId",
    endpointId: str | None = None,
    gpuTypeId: Annotated[list[str] | None, Query()] = None,
    dataCenterId: Annotated[list[str] | None, Query()] = None,
    imageName: str | None = None,
    templateId: str | None = None,
) -> Response:
    return _report(
        request, user, BillingService.endpoint_report, bucket_size=bucketSize,
        start_time=startTime, end_time=endTime, grouping=grouping, resource_id=endpointId,
        gpu_type_ids=gpuTypeId, data_center_ids=dataCenterId, image_name=imageName,
        template_id=templateId,
    )


@router.get("/pods", summary="Pod billing history",
            responses={200: {"model": list[BillingRecordOut]}})
async def pod_billing(
    request: Request,
    user: User,
    bucketSize: Bucket = "day",
    startTime: Start = None,
    endTime: End = None,
    grouping: PodGrouping = "gpuTypeId",
    podId: str | None = None,
    gpuTypeId: str | None = None,
) -> Response:
    return _report(
        request, user, BillingService.pod_report, bucket_size=bucketSize, start_time=startTime,
        end_time=endTime, grouping=grouping, pod_id=podId,
        gpu_type_ids=[gpuTypeId] if gpuTypeId else None,
    )


@router.get("/networkvolumes", summary="Network volume billing history",
            responses={200: {"model": list[NetworkVolumeBillingRecordOut]}})
async def network_volume_billing(
    request: Request,
    user: User,
    bucketSize: Bucket = "day",
    startTime: Start = None,
    endTime: End = None,
) -> Response:
    return _report(request, user, BillingService.network_volume_report, bucket_size=bucketSize,
                   start_time=startTime, end_time=endTime)
