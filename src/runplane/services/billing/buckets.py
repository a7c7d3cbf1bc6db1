"""Pure aggregation of usage intervals into calendar buckets (UTC), as /v1/billing answers.

An interval spanning several buckets is split in proportion to the time it spent in each,
so a worker running 23:30-00:30 bills half of its cost to each day.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# Cap on buckets per query: an hourly report of more than a year is refused, not computed.
MAX_BUCKETS = 10_000


@dataclass(frozen=True)
class Usage:
    """One usage interval, its cost fixed (closed) or accruing at usd_per_hr (open)."""

    resource_id: str
    start: float
    end: float | None
    usd_per_hr: float = 0.0
    amount: float | None = None
    time_billed_ms: int | None = None
    disk_gb: int = 0
    group: str | None = None


def floor_bucket(ts: float, size: str) -> datetime:
    """Start of the bucket holding ``ts``; weeks start on Monday (ISO 8601)."""
    t = datetime.fromtimestamp(ts, UTC)
    if size == "hour":
        return t.replace(minute=0, second=0, microsecond=0)
    day = t.replace(hour=0, minute=0, second=0, microsecond=0)
    if size == "day":
        return day
    if size == "week":
        return day - timedelta(days=day.weekday())
    if size == "month":
        return day.replace(day=1)
    return day.replace(month=1, day=1)


def next_bucket(start: datetime, size: str) -> datetime:
    if size == "hour":
        return start + timedelta(hours=1)
    if size == "day":
        return start + timedelta(days=1)
    if size == "week":
        return start + timedelta(weeks=1)
    if size == "month":
        return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
    return start.replace(year=start.year + 1)


def bucket_count(start: float, end: float, size: str) -> int:
    """How many buckets [start, end) spans (cheap estimate for the month/year cases)."""
    seconds = {"hour": 3600, "day": 86400, "week": 604800, "month": 28 * 86400, "year": 365 * 86400}
    return int((end - start) // seconds[size]) + 2


def aggregate(
    usages: list[Usage], start: float, end: float, size: str, now: float, group_field: str | None
) -> list[dict[str, object]]:
    """Records ``{time, amount, timeBilledMs, diskSpaceBilledGb[, <group_field>]}`` per
    (bucket, group) with any usage in [start, end), ordered by time then group."""
    amount: dict[tuple[datetime, str | None], float] = defaultdict(float)
    billed_ms: dict[tuple[datetime, str | None], float] = defaultdict(float)
    disk: dict[tuple[datetime, str | None], dict[str, int]] = defaultdict(dict)
    for u in usages:
        # An open interval accrues up to now.
        u_end = u.end if u.end is not None else max(now, u.start)
        duration = max(u_end - u.start, 0.0)
        total = u.amount if u.amount is not None else u.usd_per_hr * duration / 3600
        total_ms = u.time_billed_ms if u.time_billed_ms is not None else duration * 1000
        lo, hi = max(u.start, start), min(u_end, end)
        if duration == 0:
            if not start <= u.start < end:
                continue
            lo = hi = u.start
        elif hi <= lo:
            continue
        bucket = floor_bucket(lo, size)
        while True:
            b_lo, b_hi = bucket.timestamp(), next_bucket(bucket, size).timestamp()
            overlap = min(hi, b_hi) - max(lo, b_lo)
            share = 1.0 if duration == 0 else overlap / duration
            if share > 0 or duration == 0:
                key = (bucket, u.group)
                amount[key] += total * share
                billed_ms[key] += total_ms * share
                disk[key][u.resource_id] = max(disk[key].get(u.resource_id, 0), u.disk_gb)
            if b_hi >= hi:
                break
            bucket = next_bucket(bucket, size)
    out: list[dict[str, object]] = []
    for key in sorted(amount, key=lambda k: (k[0], k[1] or "")):
        record: dict[str, object] = {
            "time": key[0].strftime("%Y-%m-%dT%H:%M:%SZ"),
            "amount": round(amount[key], 6),
            "timeBilledMs": int(round(billed_ms[key])),
            "diskSpaceBilledGb": sum(disk[key].values()),
        }
        if group_field:
            record[group_field] = key[1] or ""
        out.append(record)
    return out
