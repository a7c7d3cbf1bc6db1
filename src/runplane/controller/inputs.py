"""The autoscaler's inputs, gathered from an endpoint and its queue (for the controller's tick
and for anything else that asks the autoscaler, such as ``runplane simulate``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from runplane.controller import autoscaler as asc
from runplane.controller.policies import Policy
from runplane.controller.ports import JobQueues
from runplane.schemas.endpoints import Endpoint

if TYPE_CHECKING:
    from runplane.broker.models import QueueMetrics


def scaler_settings(ep: Endpoint, max_parked_s: float) -> asc.ScalerSettings:
    """The endpoint's settings the autoscaler reads."""
    return asc.ScalerSettings(
        ep.workersMin, ep.workersMax, ep.scalerType, float(ep.scalerValue),
        float(ep.idleTimeout), ep.version, bool(ep.flashboot), max_parked_s)


def queue_stats(m: QueueMetrics, policy: Policy | None, queues: JobQueues,
                endpoint_id: str) -> asc.QueueStats:
    """The queue metrics the autoscaler reads (lowPriority jobs left out), with the queued
    jobs' submission times when the endpoint's policy reads the queue's ages."""
    ages = queues.queued_at(endpoint_id) if policy is not None and policy.reads_queue_ages else ()
    return asc.QueueStats(m.in_queue_normal, m.in_progress, m.oldest_queued_at,
                          tuple(ages), m.completed + m.failed)
