"""REST v2's billing: the same usage records as /v1/billing, as v2's breakdowns.

Windows snap to buckets (``startTime`` down to its bucket's start, ``endTime`` up to its
bucket's end) or are the ``lastN`` buckets ending with the current one. Pods and serverless
split GPU from CPU cost (a record with a GPU type is GPU cost); network volumes are standard
storage. runplane has no disk, platform-fee, public-endpoint, high-performance-storage or
cluster charges: those amounts are 0 and their breakdowns have no records.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from runplane.clock import Clock
from runplane.errors import Invalid
from runplane.services.billing.records import BillingService
from runplane.services.billing.buckets import MAX_BUCKETS, aggregate, floor_bucket, next_bucket
from runplane.services.billing.query import DEFAULT_WINDOW_S
from runplane.services.users import Principal

# The v2 kind of each usage kind, and its id field.
_KINDS = {"pod": ("pod", "podId"), "endpoint": ("serverless", "serverlessId"),
          "networkvolume": ("networkVolume", "networkVolumeId")}


def _stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(value: str, field: str) -> float:
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise Invalid(f"{field}: {value!r} is not an RFC 3339 date-time", field) from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def resolve_window(now: float, bucket: str, start: str | None, end: str | None,
                   last_n: int | None) -> tuple[datetime, datetime]:
    """The bucket-aligned [start, end) a query covers (see the module docstring)."""
    if last_n is not None and (start or end):
        raise Invalid("lastN: give lastN or startTime/endTime, not both", "lastN")
    if last_n is not None:
        if last_n > MAX_BUCKETS:
            raise Invalid(f"lastN: at most {MAX_BUCKETS}", "lastN")
        hi = next_bucket(floor_bucket(now, bucket), bucket)
        lo = floor_bucket(now, bucket)
        for _ in range(last_n - 1):
            lo = floor_bucket(lo.timestamp() - 1, bucket)
        return lo, hi
    end_ts = _parse(end, "endTime") if end else now
    start_ts = _parse(start, "startTime") if start else end_ts - DEFAULT_WINDOW_S
    if end_ts <= start_ts:
        raise Invalid("endTime: must be after startTime", "endTime")
    lo = floor_bucket(start_ts, bucket)
    hi = floor_bucket(end_ts, bucket)
    if hi.timestamp() < end_ts:
        hi = next_bucket(hi, bucket)
    n, t = 0, lo
    while t < hi:
        t, n = next_bucket(t, bucket), n + 1
        if n > MAX_BUCKETS:
            raise Invalid(f"bucketSize: more than {MAX_BUCKETS:,} {bucket} buckets in the "
                          "window; use a larger bucketSize or a shorter window", "bucketSize")
    return lo, hi


class BillingBreakdowns:
    """Answers /v2/billing and its breakdowns from ``BillingService``'s usage records."""

    def __init__(self, billing: BillingService, clock: Clock) -> None:
        self._billing = billing
        self._clock = clock

    def _buckets(self, principal: Principal, kind: str, lo: datetime, hi: datetime,
                 bucket: str, resource_id: str | None) -> dict[tuple[str, str], dict[str, float]]:
        """(bucket start, resource id) -> {"gpu": usd, "cpu": usd}."""
        start, end = lo.timestamp(), hi.timestamp()
        usages = self._billing.usages(principal, kind, start, end, resource_id)
        out: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: {"gpu": 0.0, "cpu": 0.0})
        for record in aggregate(usages, start, end, bucket, self._clock.now(), "group"):
            resource, part = str(record["group"]).split("\t")
            out[(str(record["time"]), resource)][part] += float(record["amount"])  # type: ignore[arg-type]
        return out

    def breakdown(self, principal: Principal, kind: str, bucket: str, lo: datetime,
                  hi: datetime, resource_id: str | None) -> dict[str, Any]:
        """``List{Pod,Serverless,NetworkVolume}BillingResponse`` for usage ``kind``."""
        name, id_field = _KINDS[kind]
        records: list[dict[str, Any]] = []
        for (time, resource), parts in sorted(self._buckets(principal, kind, lo, hi, bucket,
                                                            resource_id).items()):
            total = round(parts["gpu"] + parts["cpu"], 6)
            window = _window(time, bucket)
            if kind == "networkvolume":
                amounts = {"totalAmount": total, "standardAmount": total,
                           "highPerformanceAmount": 0.0}
            else:
                amounts = {"totalAmount": total, "gpuAmount": round(parts["gpu"], 6),
                           "cpuAmount": round(parts["cpu"], 6), "diskAmount": 0.0}
                if kind == "endpoint":
                    amounts["feeAmount"] = 0.0
            records.append({**window, **amounts, id_field: resource})
        totals = {k: round(sum(r[k] for r in records), 6) for k in
                  (records[0] if records else _zero(kind)) if k.endswith("Amount")}
        unique = "unique" + name[0].upper() + name[1:] + "Count"
        return {"records": records, "metadata": {
            "query": {"startTime": _stamp(lo), "endTime": _stamp(hi), "bucketSize": bucket,
                      id_field: resource_id},
            "recordCount": len(records), unique: len({r[id_field] for r in records}),
            "totals": totals or _zero(kind)}}

    def total(self, principal: Principal, bucket: str, lo: datetime,
              hi: datetime) -> dict[str, Any]:
        """``ListBillingResponse``: every kind's cost per bucket."""
        fields = ("podGpuAmount", "podCpuAmount", "podDiskAmount", "serverlessGpuAmount",
                  "serverlessCpuAmount", "serverlessDiskAmount", "serverlessFeeAmount",
                  "storageStandardAmount", "storageHighPerformanceAmount", "endpointAmount",
                  "clusterGpuAmount", "clusterDiskAmount", "clusterNetworkingAmount")
        by_time: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(fields, 0.0))
        for kind, gpu_field, cpu_field in (
                ("pod", "podGpuAmount", "podCpuAmount"),
                ("endpoint", "serverlessGpuAmount", "serverlessCpuAmount"),
                ("networkvolume", "storageStandardAmount", "storageStandardAmount")):
            for (time, _), parts in self._buckets(principal, kind, lo, hi, bucket, None).items():
                by_time[time][gpu_field] += parts["gpu"]
                by_time[time][cpu_field] += parts["cpu"]
        records: list[dict[str, Any]] = []
        for time in sorted(by_time):
            amounts = {k: round(v, 6) for k, v in by_time[time].items()}
            records.append({**_window(time, bucket),
                            "totalAmount": round(sum(amounts.values()), 6), **amounts})
        totals = {k: round(sum(r[k] for r in records), 6) for k in ("totalAmount", *fields)}
        return {"records": records, "metadata": {
            "query": {"startTime": _stamp(lo), "endTime": _stamp(hi), "bucketSize": bucket},
            "recordCount": len(records), "totals": totals}}


def empty(kind: str, bucket: str, lo: datetime, hi: datetime,
          id_field: str | None) -> dict[str, Any]:
    """A breakdown of something runplane never charges for (public endpoints, clusters)."""
    query: dict[str, Any] = {"startTime": _stamp(lo), "endTime": _stamp(hi), "bucketSize": bucket}
    metadata: dict[str, Any] = {"query": query, "recordCount": 0, "totals": _zero(kind)}
    if id_field:
        query[id_field] = None
        metadata["uniqueClusterCount"] = 0
    return {"records": [], "metadata": metadata}


def _window(time: str, bucket: str) -> dict[str, str]:
    start = datetime.strptime(time, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return {"startTime": time, "endTime": _stamp(next_bucket(start, bucket))}


def _zero(kind: str) -> dict[str, float]:
    names = {"pod": ("totalAmount", "gpuAmount", "cpuAmount", "diskAmount"),
             "endpoint": ("totalAmount", "gpuAmount", "cpuAmount", "diskAmount", "feeAmount"),
             "networkvolume": ("totalAmount", "standardAmount", "highPerformanceAmount"),
             "public": ("totalAmount",),
             "cluster": ("totalAmount", "gpuAmount", "diskAmount", "networkingAmount")}[kind]
    return dict.fromkeys(names, 0.0)
