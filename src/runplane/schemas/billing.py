"""Billing query parameters (the answers are the spec's BillingRecord dicts)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

BucketSize = Literal["hour", "day", "week", "month", "year"]
EndpointGrouping = Literal["endpointId", "podId", "gpuTypeId"]
PodGrouping = Literal["podId", "gpuTypeId"]


@dataclass(frozen=True)
class BillingQuery:
    """What /v1/billing/* filter on, already parsed (times in epoch seconds, UTC)."""

    start: float
    end: float
    bucket_size: BucketSize = "day"
    grouping: str | None = None
    resource_id: str | None = None
    pod_id: str | None = None
    gpu_type_ids: list[str] = field(default_factory=list)
    data_center_ids: list[str] = field(default_factory=list)
    image_name: str | None = None
    template_id: str | None = None
