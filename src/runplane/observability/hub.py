"""Metrics and per-endpoint stats, fed by the broker's and the controller's events.

An :class:`Observability` is the broker's job listener and the controller's observer (the
composition root subscribes it to both), and the sampler that records gauges (workers by
state, queue depth) into the stats rings on the controller's tick.
"""

from __future__ import annotations

import logging
from typing import Any

from runplane.broker.broker import Broker
from runplane.broker.models import (
    COMPLETED,
    JOB_FINAL,
    JOB_SUBMITTED,
    JOB_TAKEN,
    JobEvent,
)
from runplane.broker.workers import WorkerRegistry
from runplane.clock import Clock
from runplane.controller.reconcile import Controller
from runplane.observability.gauges import LiveState
from runplane.observability.metrics import Metrics
from runplane.observability.stats import WORKER_STATES, Sample, StatsStore
from runplane.services.endpoints import EndpointService

log = logging.getLogger("runplane.events")

# Gauges are sampled at most this often (buckets are 10 s; the last sample in one wins).
SAMPLE_INTERVAL_S = 5.0


class Observability:
    """Fans broker and controller events out to :class:`Metrics` and :class:`StatsStore`."""

    def __init__(self, clock: Clock, endpoints: EndpointService, broker: Broker,
                 workers: WorkerRegistry, controller: Controller) -> None:
        self.live = LiveState(endpoints, broker, workers, controller, clock)
        self.metrics = Metrics(self.live)
        self.stats = StatsStore()
        self._last_sample = float("-inf")

    # -- broker job listener (hot path: O(1), no I/O) --------------------------------------

    def on_job(self, e: JobEvent) -> None:
        self.metrics.on_job(e)
        if log.isEnabledFor(logging.DEBUG):  # every job step: only at log_level = "debug"
            log.debug("job %s %s (%s)", e.job_id, e.kind, e.status, extra={
                "job_id": e.job_id, "endpoint_id": e.endpoint_id, "worker_id": e.worker_id,
                "delay_ms": e.delay_ms, "execution_ms": e.execution_ms})
        kind = e.kind
        if kind == JOB_SUBMITTED:
            self.stats.submitted(e.endpoint_id, e.at)
        elif kind == JOB_TAKEN:
            if e.delay_ms is not None:
                self.stats.taken(e.endpoint_id, e.at, e.delay_ms)
        elif kind == JOB_FINAL:
            self.stats.finished(e.endpoint_id, e.at, e.status == COMPLETED, e.execution_ms)

    def on_lb_request(self, endpoint_id: str, arrived_at: float, started_at: float,
                      ended_at: float, ok: bool) -> None:
        """A load-balancing endpoint's request (``lb.pool``): counted like a job, its wait
        for a worker as the delay and its time on the worker as the execution."""
        self.metrics.on_lb_request(endpoint_id, started_at - arrived_at, ended_at - started_at, ok)
        stats = self.stats
        stats.submitted(endpoint_id, arrived_at)
        stats.taken(endpoint_id, started_at, (started_at - arrived_at) * 1000)
        stats.finished(endpoint_id, ended_at, ok, (ended_at - started_at) * 1000)

    # -- controller observer ---------------------------------------------------------------

    def scaled(self, endpoint_id: str, action: str, workers: int, reason: str) -> None:
        self.metrics.on_scaled(endpoint_id, action, workers, reason)
        log.info("endpoint %s scaled %s by %d: %s", endpoint_id, action, workers, reason,
                 extra={"endpoint_id": endpoint_id})

    def worker_ready(self, endpoint_id: str, worker_id: str, cold_start_s: float) -> None:
        self.metrics.on_cold_start(endpoint_id, cold_start_s)
        log.info("worker %s ready after a %.1f s cold start", worker_id, cold_start_s,
                 extra={"worker_id": worker_id, "endpoint_id": endpoint_id})
        self.stats.cold_start(endpoint_id, self.live.clock.now(), cold_start_s)

    def ticked(self, now: float) -> None:
        if now - self._last_sample >= SAMPLE_INTERVAL_S:
            self.sample(now)

    # -- sampling --------------------------------------------------------------------------

    def sample(self, now: float) -> None:
        """Record every active endpoint's gauges; forget endpoints that were deleted.

        An endpoint gets a series once something happens on it (a job, a worker); from then
        on it is sampled every time, so its charts drop to zero rather than stop.
        """
        self._last_sample = now
        ids = {e.id for e in self.live.endpoints.list_all()}
        for gone in [ep for ep in self.stats.endpoints() if ep not in ids]:
            self.stats.drop(gone)
        for gone in [ep for ep in self.metrics.endpoint_ids() if ep not in ids]:
            self.metrics.forget(gone)
        workers = self.live.workers_by_endpoint()
        for ep in ids:
            self._sample_one(ep, now, workers.get(ep))

    def _sample_one(self, endpoint_id: str, now: float, workers: list[int] | None) -> None:
        in_queue = self.live.broker.queue_metrics(endpoint_id).in_queue
        if not (workers or in_queue or self.stats.has(endpoint_id)):
            return  # never active: no series (most endpoints, most of the time)
        counts = tuple(workers) if workers else (0,) * len(WORKER_STATES)
        self.stats.sample(endpoint_id, now, Sample(counts, in_queue))

    def endpoint_stats(self, endpoint_id: str, window_s: int) -> dict[str, Any]:
        """The stats route's body; the current bucket is sampled now so it is never stale."""
        now = self.live.clock.now()
        self._sample_one(endpoint_id, now, self.live.workers_by_endpoint().get(endpoint_id))
        return self.stats.series(endpoint_id, now, window_s)
