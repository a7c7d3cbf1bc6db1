"""Per-endpoint statistics over time, kept in memory for the dashboard (``/v1/.../stats``).

Three rings per endpoint, each fed directly by every event (so no tier is derived from
another and percentiles stay honest): 10 s buckets for the last hour, 60 s buckets for six
hours and 300 s buckets for a day. A bucket holds counters (jobs submitted, completed, failed,
cold starts), latency histograms and the last sampled gauges (workers by state, queue depth).

Latencies go into log-scale bins 2^(1/16) apart (about 4.4 % wide), each keeping its count and
sum: a percentile is the mean of the bin it falls in, so it is within 4.4 % of the exact value
(exact when the bin holds one distinct value), and a bucket's memory is bounded whatever the
traffic. Everything is O(1) per event: the broker and controller call in from their hot paths.

History lives only in memory and restarts with the server (docs/observability.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

# (bucket seconds, buckets kept): 1 h at 10 s, 6 h at 60 s, 24 h at 300 s.
TIERS: tuple[tuple[int, int], ...] = ((10, 360), (60, 360), (300, 288))
MAX_WINDOW_S = 86_400
WORKER_STATES = ("initializing", "idle", "running", "throttled", "unhealthy", "parked")
_BINS_PER_OCTAVE = 16


def bucket_seconds_for(window_s: int) -> int:
    """The bucket width answered for a window: 10 s up to 1 h, 60 s up to 6 h, else 300 s."""
    if window_s <= 3600:
        return 10
    if window_s <= 21_600:
        return 60
    return 300


def _bin(ms: float) -> int:
    """Histogram bin of a latency in milliseconds (bin 0 holds everything below 1 ms)."""
    if ms < 1:
        return 0
    return 1 + int(math.log2(ms) * _BINS_PER_OCTAVE)


# A histogram: bin -> [count, sum of the values in it (ms)].
Hist = dict[int, list[float]]


def percentile(hist: Hist | None, q: float) -> int | None:
    """Nearest-rank percentile ``q`` (0..1) of a binned histogram, in whole milliseconds: the
    mean of the bin holding that rank. None when the histogram is empty."""
    if not hist:
        return None
    total = sum(v[0] for v in hist.values())
    rank = max(1, math.ceil(q * total))
    seen = 0.0
    for b in sorted(hist):
        count, value_sum = hist[b]
        seen += count
        if seen >= rank:
            return round(value_sum / count)
    raise AssertionError("unreachable: the bins add up to the total")


class Bucket:
    """One time bucket of one endpoint. ``__slots__``: there can be thousands."""

    __slots__ = ("t", "requests", "completed", "failed", "cold_starts", "delay", "execution",
                 "cold", "workers", "in_queue")

    def __init__(self, t: int) -> None:
        self.t = t
        self.requests = 0
        self.completed = 0
        self.failed = 0
        self.cold_starts = 0
        # Latency histograms (bin -> count), created on the first sample only.
        self.delay: Hist | None = None
        self.execution: Hist | None = None
        self.cold: Hist | None = None
        # Last sampled gauges in this bucket; None until the sampler ran in it.
        self.workers: tuple[int, ...] | None = None
        self.in_queue = 0


def _add(hist: Hist | None, b: int, ms: float) -> Hist:
    """Count ``ms`` (in bin ``b``, computed once for the three rings) into ``hist``."""
    if hist is None:
        hist = {}
    v = hist.get(b)
    if v is None:
        hist[b] = [1, ms]
    else:
        v[0] += 1
        v[1] += ms
    return hist


class _Ring:
    """Fixed-size ring of buckets of one width; a slot is reused once its time has passed."""

    __slots__ = ("width", "slots")

    def __init__(self, width: int, size: int) -> None:
        self.width = width
        self.slots: list[Bucket | None] = [None] * size

    def at(self, now: float) -> Bucket:
        start = int(now // self.width) * self.width
        i = (start // self.width) % len(self.slots)
        b = self.slots[i]
        if b is None or b.t != start:
            b = self.slots[i] = Bucket(start)
        return b

    def get(self, start: int) -> Bucket | None:
        b = self.slots[(start // self.width) % len(self.slots)]
        return b if b is not None and b.t == start else None


class EndpointSeries:
    """The three rings of one endpoint, and the buckets events go to now.

    Every width is a multiple of the finest (10 s) and buckets are aligned on the epoch, so the
    three current buckets stay the same for the whole finest bucket: events look them up once
    per 10 s, not once per event.
    """

    __slots__ = ("rings", "current", "start", "end")

    def __init__(self) -> None:
        self.rings = tuple(_Ring(width, size) for width, size in TIERS)
        self.current: tuple[Bucket, ...] = ()
        self.start = self.end = 0.0

    def buckets(self, at: float) -> tuple[Bucket, ...]:
        if self.start <= at < self.end:
            return self.current
        current = tuple(r.at(at) for r in self.rings)
        if at >= self.start:  # time moved on (an event from the past is not cached)
            self.current = current
            self.start = float(current[0].t)
            self.end = self.start + self.rings[0].width
        return current


@dataclass(frozen=True)
class Sample:
    """Gauges of one endpoint at one instant (the sampler's input)."""

    workers: tuple[int, ...]  # counts in WORKER_STATES order
    in_queue: int


class StatsStore:
    """Every endpoint's series. Only the server's event loop thread touches it."""

    def __init__(self) -> None:
        self._series: dict[str, EndpointSeries] = {}

    def _buckets(self, endpoint_id: str, at: float) -> tuple[Bucket, ...]:
        s = self._series.get(endpoint_id)
        if s is None:
            s = self._series[endpoint_id] = EndpointSeries()
        return s.buckets(at)

    def has(self, endpoint_id: str) -> bool:
        return endpoint_id in self._series

    def endpoints(self) -> list[str]:
        return list(self._series)

    def drop(self, endpoint_id: str) -> None:
        """Forget a deleted endpoint's history."""
        self._series.pop(endpoint_id, None)

    # -- events (O(1): three rings) --------------------------------------------------------

    def submitted(self, endpoint_id: str, at: float) -> None:
        for b in self._buckets(endpoint_id, at):
            b.requests += 1

    def taken(self, endpoint_id: str, at: float, delay_ms: float) -> None:
        i = _bin(delay_ms)
        for b in self._buckets(endpoint_id, at):
            b.delay = _add(b.delay, i, delay_ms)

    def finished(self, endpoint_id: str, at: float, completed: bool,
                 execution_ms: float | None) -> None:
        i = _bin(execution_ms) if execution_ms is not None else 0
        for b in self._buckets(endpoint_id, at):
            if completed:
                b.completed += 1
            else:
                b.failed += 1
            if execution_ms is not None:
                b.execution = _add(b.execution, i, execution_ms)

    def cold_start(self, endpoint_id: str, at: float, seconds: float) -> None:
        ms = seconds * 1000.0
        i = _bin(ms)
        for b in self._buckets(endpoint_id, at):
            b.cold_starts += 1
            b.cold = _add(b.cold, i, ms)

    def sample(self, endpoint_id: str, at: float, sample: Sample) -> None:
        """Record the gauges now; the last sample taken in a bucket is what it shows."""
        for b in self._buckets(endpoint_id, at):
            b.workers = sample.workers
            b.in_queue = sample.in_queue

    # -- reading ---------------------------------------------------------------------------

    def series(self, endpoint_id: str, now: float, window_s: int) -> dict[str, Any]:
        """The dashboard's JSON: one point per bucket of the window, oldest first.

        Buckets with no event are zeros; gauges of a bucket the sampler did not reach carry
        the previous sampled value forward (a gap in sampling is not a drop to zero).
        """
        width = bucket_seconds_for(window_s)
        ring = next((r for r in self._rings_or_none(endpoint_id) if r.width == width), None)
        n = max(1, math.ceil(window_s / width))
        last = int(now // width) * width
        points = []
        carried: tuple[tuple[int, ...], int] | None = None
        for i in range(n):
            t = last - (n - 1 - i) * width
            b = ring.get(t) if ring is not None else None
            if b is not None and b.workers is not None:
                carried = (b.workers, b.in_queue)
            points.append(_point(t, b, carried))
        return {"endpointId": endpoint_id, "bucketSeconds": width, "points": points}

    def _rings_or_none(self, endpoint_id: str) -> tuple[_Ring, ...]:
        s = self._series.get(endpoint_id)
        return s.rings if s is not None else ()


def _point(t: int, b: Bucket | None, gauges: tuple[tuple[int, ...], int] | None) -> dict[str, Any]:
    workers, in_queue = gauges if gauges is not None else ((0,) * len(WORKER_STATES), 0)
    return {
        "t": t,
        "requests": b.requests if b else 0,
        "completed": b.completed if b else 0,
        "failed": b.failed if b else 0,
        "delayP70": percentile(b.delay, 0.70) if b else None,
        "delayP90": percentile(b.delay, 0.90) if b else None,
        "delayP98": percentile(b.delay, 0.98) if b else None,
        "executionP70": percentile(b.execution, 0.70) if b else None,
        "executionP90": percentile(b.execution, 0.90) if b else None,
        "executionP98": percentile(b.execution, 0.98) if b else None,
        "coldStarts": b.cold_starts if b else 0,
        "coldStartP90": percentile(b.cold, 0.90) if b else None,
        "workers": dict(zip(WORKER_STATES, workers, strict=True)),
        "inQueue": in_queue,
    }
