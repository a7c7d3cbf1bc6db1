"""Turn /v1/billing query parameters into a BillingQuery, refusing bad ones with 400."""

from __future__ import annotations

from datetime import UTC, datetime

from runplane.catalog.catalog import Catalog
from runplane.errors import Invalid
from runplane.schemas.billing import BillingQuery
from runplane.schemas.common import split_commas
from runplane.services.billing.buckets import MAX_BUCKETS, bucket_count

# Without startTime a report covers the last 30 days.
DEFAULT_WINDOW_S = 30 * 86400


def parse_time(value: str, field: str) -> float:
    """ISO 8601 date or date-time; without a zone it is UTC."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise Invalid(
            f"{field}: {value!r} is not an ISO 8601 date-time such as 2023-01-01T00:00:00Z", field
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _names(values: list[str] | None) -> list[str]:
    out: list[str] = []
    for value in values or []:
        out.extend(split_commas(value))
    return out


def build_query(
    catalog: Catalog,
    now: float,
    *,
    bucket_size: str,
    start_time: str | None,
    end_time: str | None,
    grouping: str | None = None,
    resource_id: str | None = None,
    pod_id: str | None = None,
    gpu_type_ids: list[str] | None = None,
    data_center_ids: list[str] | None = None,
    image_name: str | None = None,
    template_id: str | None = None,
) -> BillingQuery:
    """Check names against the catalog and the window's bounds; defaults: the last 30 days."""
    end = parse_time(end_time, "endTime") if end_time else now
    start = parse_time(start_time, "startTime") if start_time else end - DEFAULT_WINDOW_S
    if end <= start:
        raise Invalid("endTime: must be after startTime", "endTime")
    if bucket_count(start, end, bucket_size) > MAX_BUCKETS:
        raise Invalid(
            f"bucketSize: more than {MAX_BUCKETS:,} {bucket_size} buckets between startTime and "
            "endTime; use a larger bucketSize or a shorter period",
            "bucketSize",
        )
    gpus = _names(gpu_type_ids)
    for gpu in gpus:
        if gpu not in catalog.gpu_types:
            raise Invalid(f"gpuTypeId: unknown GPU type {gpu!r}", "gpuTypeId")
    dcs = _names(data_center_ids)
    for dc in dcs:
        if dc not in catalog.data_centers:
            raise Invalid(f"dataCenterId: unknown data center {dc!r}", "dataCenterId")
    return BillingQuery(
        start=start, end=end, bucket_size=bucket_size,  # type: ignore[arg-type]
        grouping=grouping, resource_id=resource_id or None, pod_id=pod_id or None,
        gpu_type_ids=gpus, data_center_ids=dcs, image_name=image_name or None,
        template_id=template_id or None,
    )
