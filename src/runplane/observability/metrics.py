"""Prometheus metrics: event-fed counters and histograms, and gauges read at scrape time.

Every server has its own ``CollectorRegistry`` (no process-global state: tests build many
servers in one process). Counters and histograms are fed by broker and controller events
through :class:`Metrics`; queue depth, oldest queued age, workers by state and machine
capacity are read from the live state by :class:`StateCollector` only when Prometheus
scrapes, so they cost nothing between scrapes and can never drift from the truth.

Label values are bounded: endpoint ids, job states, worker states, machine ids, GPU type ids,
and scaling reasons reduced to a fixed set of categories by :func:`reason_category` (the
autoscaler's reason text carries numbers and would make one series per distinct text).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from runplane import __version__
from runplane.broker.models import (
    JOB_FINAL,
    JOB_REQUEUED,
    JOB_SUBMITTED,
    JOB_TAKEN,
    JobEvent,
)
from runplane.observability.gauges import LiveState
from runplane.observability.stats import WORKER_STATES

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Seconds. Delay: a warm queue hands jobs out in milliseconds; a cold one waits minutes.
DELAY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
EXECUTION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
COLD_START_BUCKETS = (0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 60, 120, 300)

# (substring of the autoscaler's or controller's reason, category), first match wins.
_REASONS = (
    ("scale from zero", "scale_from_zero"),
    ("QUEUE_DELAY: oldest job waited", "queue_delay"),
    ("REQUEST_COUNT", "request_count"),
    ("ADAPTIVE", "adaptive"),
    ("idle for", "idle_timeout"),
    ("outdated", "outdated"),
    ("unhealthy", "unhealthy"),
)


def reason_category(reason: str) -> str:
    """A scaling decision's reason text -> one of a fixed set of label values."""
    for needle, category in _REASONS:
        if needle in reason:
            return category
    if "clamped" in reason:
        return "workers_min_max"  # e.g. workersMin raised with an empty queue
    return "other"


@dataclass
class _EndpointChildren:
    """Cached label children of one endpoint: ``labels()`` takes a lock and hashes the
    label tuple, too slow to repeat on every job event."""

    submitted: Any
    requeued: Any
    delay: Any
    execution: Any
    finished: dict[str, Any] = field(default_factory=dict)
    cold: Any = None
    scaling: dict[tuple[str, str], Any] = field(default_factory=dict)
    # Load-balancing endpoints' requests: (answered, failed) counters, wait, time on worker.
    lb: tuple[Any, Any, Any, Any] | None = None


class Metrics:
    """The server's metrics registry and the event handlers that feed it."""

    def __init__(self, live: LiveState) -> None:
        # No ``*_created`` series: they double the exposition and Prometheus' text format
        # ignores them. (A process-wide switch of prometheus_client; the server owns it.)
        disable_created_metrics()
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.submitted = Counter("runplane_jobs_submitted", "Jobs accepted by /run and /runsync.",
                                 ["endpoint_id"], registry=r)
        self.requeued = Counter("runplane_jobs_requeued",
                                "Jobs put back in the queue (lost by their worker, or retried).",
                                ["endpoint_id"], registry=r)
        self.finished = Counter("runplane_jobs_finished",
                                "Jobs that reached a final state, by that state.",
                                ["endpoint_id", "status"], registry=r)
        self.delay = Histogram("runplane_job_delay_seconds",
                               "Time from submission to being handed to a worker (delayTime).",
                               ["endpoint_id"], buckets=DELAY_BUCKETS, registry=r)
        self.execution = Histogram("runplane_job_execution_seconds",
                                   "Time from being handed to a worker to the final state "
                                   "(executionTime).",
                                   ["endpoint_id"], buckets=EXECUTION_BUCKETS, registry=r)
        self.cold_start = Histogram("runplane_worker_cold_start_seconds",
                                    "Time from a worker's start to its first job-take.",
                                    ["endpoint_id"], buckets=COLD_START_BUCKETS, registry=r)
        self.scaling = Counter("runplane_scaling_decisions",
                               "Workers started (up) or stopped (down) by the autoscaler, "
                               "by reason category.",
                               ["endpoint_id", "action", "reason"], registry=r)
        self.lb_requests = Counter("runplane_lb_requests",
                                   "Load-balancing endpoints' requests a worker took, by "
                                   "outcome (answered: the worker answered; failed: it did "
                                   "not, or too late).",
                                   ["endpoint_id", "outcome"], registry=r)
        self.lb_wait = Histogram("runplane_lb_request_wait_seconds",
                                 "Time a load-balancing request waited for a ready worker.",
                                 ["endpoint_id"], buckets=DELAY_BUCKETS, registry=r)
        self.lb_time = Histogram("runplane_lb_request_seconds",
                                 "Time from a load-balancing request reaching its worker to "
                                 "the end of the answer.",
                                 ["endpoint_id"], buckets=DELAY_BUCKETS, registry=r)
        r.register(StateCollector(live))
        self._children: dict[str, _EndpointChildren] = {}

    def render(self) -> bytes:
        """The Prometheus text exposition of everything."""
        return generate_latest(self.registry)

    def _of(self, endpoint_id: str) -> _EndpointChildren:
        c = self._children.get(endpoint_id)
        if c is None:
            c = self._children[endpoint_id] = _EndpointChildren(
                self.submitted.labels(endpoint_id), self.requeued.labels(endpoint_id),
                self.delay.labels(endpoint_id), self.execution.labels(endpoint_id))
        return c

    # -- events (O(1)) ---------------------------------------------------------------------

    def on_job(self, e: JobEvent) -> None:
        c = self._of(e.endpoint_id)
        if e.kind == JOB_SUBMITTED:
            c.submitted.inc()
        elif e.kind == JOB_TAKEN:
            if e.delay_ms is not None:
                c.delay.observe(e.delay_ms / 1000.0)
        elif e.kind == JOB_FINAL:
            child = c.finished.get(e.status)
            if child is None:
                child = c.finished[e.status] = self.finished.labels(e.endpoint_id, e.status)
            child.inc()
            if e.execution_ms is not None:
                c.execution.observe(e.execution_ms / 1000.0)
        elif e.kind == JOB_REQUEUED:
            c.requeued.inc()

    def on_lb_request(self, endpoint_id: str, wait_s: float, took_s: float, ok: bool) -> None:
        c = self._of(endpoint_id)
        if c.lb is None:
            c.lb = (self.lb_requests.labels(endpoint_id, "answered"),
                    self.lb_requests.labels(endpoint_id, "failed"),
                    self.lb_wait.labels(endpoint_id), self.lb_time.labels(endpoint_id))
        (c.lb[0] if ok else c.lb[1]).inc()
        c.lb[2].observe(wait_s)
        c.lb[3].observe(took_s)

    def on_cold_start(self, endpoint_id: str, seconds: float) -> None:
        c = self._of(endpoint_id)
        if c.cold is None:
            c.cold = self.cold_start.labels(endpoint_id)
        c.cold.observe(seconds)

    def on_scaled(self, endpoint_id: str, action: str, workers: int, reason: str) -> None:
        c = self._of(endpoint_id)
        key = (action, reason_category(reason))
        child = c.scaling.get(key)
        if child is None:
            child = c.scaling[key] = self.scaling.labels(endpoint_id, *key)
        child.inc(workers)

    def endpoint_ids(self) -> list[str]:
        """Endpoints that have series."""
        return list(self._children)

    def forget(self, endpoint_id: str) -> None:
        """Drop a deleted endpoint's series (they would otherwise be exported forever)."""
        c = self._children.pop(endpoint_id, None)
        if c is None:
            return
        for metric in (self.submitted, self.requeued, self.delay, self.execution):
            metric.remove(endpoint_id)
        if c.cold is not None:
            self.cold_start.remove(endpoint_id)
        for status in c.finished:
            self.finished.remove(endpoint_id, status)
        for action, reason in c.scaling:
            self.scaling.remove(endpoint_id, action, reason)
        if c.lb is not None:
            for outcome in ("answered", "failed"):
                self.lb_requests.remove(endpoint_id, outcome)
            self.lb_wait.remove(endpoint_id)
            self.lb_time.remove(endpoint_id)


class StateCollector(Collector):
    """Gauges read from the live state at scrape time."""

    def __init__(self, live: LiveState) -> None:
        self._live = live

    def describe(self) -> list[Any]:
        return []  # dynamic: nothing to check at registration

    def collect(self) -> Iterator[Any]:
        live = self._live
        info = GaugeMetricFamily("runplane_info", "The runplane server.", labels=["version"])
        info.add_metric([__version__], 1)
        yield info

        endpoints = [e.id for e in live.endpoints.list_all()]
        depth = GaugeMetricFamily("runplane_queue_depth",
                                  "Jobs waiting in the endpoint's queue (IN_QUEUE).",
                                  labels=["endpoint_id"])
        in_progress = GaugeMetricFamily("runplane_jobs_in_progress",
                                        "Jobs handed to workers and not final.",
                                        labels=["endpoint_id"])
        oldest = GaugeMetricFamily("runplane_queue_oldest_age_seconds",
                                   "Age of the oldest queued job that is not lowPriority "
                                   "(0 when none).", labels=["endpoint_id"])
        workers = GaugeMetricFamily("runplane_workers", "Workers by state.",
                                    labels=["endpoint_id", "state"])
        desired = GaugeMetricFamily("runplane_endpoint_desired_workers",
                                    "Workers the autoscaler wants now.", labels=["endpoint_id"])
        broker = live.broker
        controller = live.controller
        readings = controller.readings
        now = live.clock.now()
        by_state = live.workers_by_endpoint()
        zeros = [0] * len(WORKER_STATES)
        for ep in endpoints:
            m = broker.queue_metrics(ep)
            depth.add_metric([ep], m.in_queue)
            in_progress.add_metric([ep], m.in_progress)
            age = max(0.0, now - m.oldest_queued_at) if m.oldest_queued_at is not None else 0.0
            oldest.add_metric([ep], age)
            for state, n in zip(WORKER_STATES, by_state.get(ep, zeros), strict=True):
                workers.add_metric([ep, state], n)
            desired.add_metric([ep], readings.desired_workers(ep))
        yield from (depth, in_progress, oldest, workers, desired)
        yield from _machine_families(live)
        ticks = CounterMetricFamily("runplane_controller_ticks",
                                    "Reconcile ticks since the server started.")
        ticks.add_metric([], controller.tick_count)
        last = GaugeMetricFamily("runplane_controller_last_tick_seconds",
                                 "Duration of the last reconcile tick.")
        last.add_metric([], controller.last_tick_ms / 1000.0)
        yield from (ticks, last)


def _machine_families(live: LiveState) -> Iterator[Any]:
    gpus = GaugeMetricFamily("runplane_machine_gpus", "GPUs of a machine, by type.",
                             labels=["machine_id", "gpu_type_id"])
    gpus_used = GaugeMetricFamily("runplane_machine_gpus_used",
                                  "GPUs of a machine held by workers and pods, by type.",
                                  labels=["machine_id", "gpu_type_id"])
    vcpus = GaugeMetricFamily("runplane_machine_vcpus", "vCPUs a machine offers.",
                              labels=["machine_id"])
    vcpus_used = GaugeMetricFamily("runplane_machine_vcpus_used",
                                   "vCPUs held by CPU workers and pods (may exceed the offer: "
                                   "CPU is over-committed).", labels=["machine_id"])
    memory = GaugeMetricFamily("runplane_machine_memory_gb", "Memory a machine offers (GB).",
                               labels=["machine_id"])
    memory_used = GaugeMetricFamily("runplane_machine_memory_used_gb",
                                    "Memory held by CPU workers and pods (GB).",
                                    labels=["machine_id"])
    for m in live.machine_usage():
        for type_id, n in m.gpus.items():
            gpus.add_metric([m.machine_id, type_id], n)
            gpus_used.add_metric([m.machine_id, type_id], m.gpus_used.get(type_id, 0))
        vcpus.add_metric([m.machine_id], m.vcpus)
        vcpus_used.add_metric([m.machine_id], m.vcpus_used)
        memory.add_metric([m.machine_id], m.memory_gb)
        memory_used.add_metric([m.machine_id], m.memory_used_gb)
    yield from (gpus, gpus_used, vcpus, vcpus_used, memory, memory_used)

