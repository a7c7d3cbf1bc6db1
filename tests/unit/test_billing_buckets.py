"""Aggregation of usage intervals into UTC buckets: splitting, grouping, open intervals."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from runplane.services.billing.buckets import Usage, aggregate, floor_bucket, next_bucket


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("size", "at", "start", "following"),
    [
        ("hour", "2024-03-10T13:45:00", "2024-03-10T13:00:00", "2024-03-10T14:00:00"),
        ("day", "2024-03-10T13:45:00", "2024-03-10T00:00:00", "2024-03-11T00:00:00"),
        ("week", "2024-03-10T13:45:00", "2024-03-04T00:00:00", "2024-03-11T00:00:00"),
        ("month", "2024-12-10T13:45:00", "2024-12-01T00:00:00", "2025-01-01T00:00:00"),
        ("year", "2024-12-10T13:45:00", "2024-01-01T00:00:00", "2025-01-01T00:00:00"),
    ],
)
def test_bucket_edges(size: str, at: str, start: str, following: str) -> None:
    b = floor_bucket(ts(at), size)
    assert b.timestamp() == ts(start)
    assert next_bucket(b, size).timestamp() == ts(following)


def test_interval_split_across_days_in_proportion() -> None:
    u = Usage("ep1", ts("2024-01-01T23:30:00"), ts("2024-01-02T00:30:00"), amount=2.0,
              time_billed_ms=3_600_000, group="ep1")
    out = aggregate([u], ts("2024-01-01T00:00:00"), ts("2024-01-03T00:00:00"), "day", 0, "endpointId")
    assert out == [
        {"time": "2024-01-01T00:00:00Z", "amount": 1.0, "timeBilledMs": 1_800_000,
         "diskSpaceBilledGb": 0, "endpointId": "ep1"},
        {"time": "2024-01-02T00:00:00Z", "amount": 1.0, "timeBilledMs": 1_800_000,
         "diskSpaceBilledGb": 0, "endpointId": "ep1"},
    ]


def test_window_clips_and_groups_sum() -> None:
    day = ts("2024-01-01T00:00:00")
    usages = [
        Usage("ep1", day + 3600, day + 7200, amount=1.0, group="A40"),
        Usage("ep2", day + 3600, day + 5400, amount=0.5, group="A40"),
        Usage("ep3", day + 3600, day + 7200, amount=3.0, group="H100"),
        Usage("ep4", day - 7200, day - 3600, amount=9.0, group="A40"),  # before the window
    ]
    out = aggregate(usages, day, day + 86400, "day", 0, "gpuTypeId")
    assert [(r["gpuTypeId"], r["amount"]) for r in out] == [("A40", 1.5), ("H100", 3.0)]
    # Half the window: half of each interval crossing its end.
    half = aggregate(usages[:1], day, day + 5400, "hour", 0, None)
    assert [(r["time"], r["amount"]) for r in half] == [("2024-01-01T01:00:00Z", 0.5)]


def test_open_interval_accrues_until_now() -> None:
    start = ts("2024-01-01T00:00:00")
    u = Usage("vol", start, None, usd_per_hr=0.1, disk_gb=100)
    out = aggregate([u], start, start + 86400 * 3, "day", start + 86400 * 1.5, None)
    assert [(r["time"], round(r["amount"], 6), r["diskSpaceBilledGb"]) for r in out] == [
        ("2024-01-01T00:00:00Z", 2.4, 100), ("2024-01-02T00:00:00Z", 1.2, 100),
    ]


def test_disk_counts_each_resource_once_at_its_largest() -> None:
    start = ts("2024-01-01T00:00:00")
    usages = [
        Usage("v1", start, start + 3600, disk_gb=10),
        Usage("v1", start + 3600, start + 7200, disk_gb=20),  # resized
        Usage("v2", start, start + 7200, disk_gb=5),
    ]
    out = aggregate(usages, start, start + 86400, "day", 0, None)
    assert out[0]["diskSpaceBilledGb"] == 25


def test_instant_record_lands_in_its_bucket() -> None:
    at = ts("2024-01-01T05:00:00")
    out = aggregate([Usage("p", at, at, amount=0.25)], at - 10, at + 10, "hour", 0, None)
    assert out == [{"time": "2024-01-01T05:00:00Z", "amount": 0.25, "timeBilledMs": 0,
                    "diskSpaceBilledGb": 0}]
