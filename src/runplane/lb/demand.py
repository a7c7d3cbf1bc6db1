"""What scales endpoints: queued jobs (the broker) and waiting or in-flight HTTP requests (the
load balancer), as one source of queue metrics for the controller.

The controller and FlashBoot read ``queue_metrics`` and are told of every enqueue; for a
load-balancing endpoint the load balancer's requests stand in for jobs: those waiting for a
worker as queued, those in flight as in progress, so REQUEST_COUNT (in-flight requests per
worker), scale from zero and FlashBoot's resume on arrival work for both kinds unchanged.
An endpoint has one kind, so the two never both count for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from runplane.broker.models import QueueMetrics
from runplane.lb.pool import LoadBalancer


class JobQueues(Protocol):
    """The broker's side (``broker.Broker``)."""

    def queue_metrics(self, endpoint_id: str) -> QueueMetrics: ...
    def add_enqueue_listener(self, callback: Callable[[str], None]) -> None: ...
    def queued_at(self, endpoint_id: str) -> list[float]: ...


class Demand:
    """The controller's ``JobQueues`` over the broker and the load balancer."""

    def __init__(self, jobs: JobQueues, requests: LoadBalancer) -> None:
        self._jobs = jobs
        self._requests = requests

    def queue_metrics(self, endpoint_id: str) -> QueueMetrics:
        """The load balancer's metrics for an endpoint it serves, else the broker's."""
        served = self._requests.metrics(endpoint_id)
        return served if served is not None else self._jobs.queue_metrics(endpoint_id)

    def add_enqueue_listener(self, callback: Callable[[str], None]) -> None:
        self._jobs.add_enqueue_listener(callback)
        self._requests.add_enqueue_listener(callback)

    def queued_at(self, endpoint_id: str) -> list[float]:
        waiting = self._requests.queued_at(endpoint_id)
        return waiting if waiting else self._jobs.queued_at(endpoint_id)
