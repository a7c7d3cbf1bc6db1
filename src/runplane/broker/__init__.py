"""The job broker: per-endpoint queues, long-poll hand-off, sweeps, worker heartbeats.

The store is the truth (``jobs``, ``job_chunks``, ``workers`` tables); what lives here in
memory is an index over it, rebuilt at start-up (:mod:`.rebuild`). Writes go through one
group-commit writer thread (:mod:`.writer`) so concurrent requests share one transaction,
and a request is answered only after its own write committed.
"""

from runplane.broker.broker import Broker
from runplane.broker.handoff import JobHandoff
from runplane.broker.models import FINAL_STATES, Job, QueueMetrics, WorkerView
from runplane.broker.workers import WorkerRegistry

__all__ = ["FINAL_STATES", "Broker", "Job", "JobHandoff", "QueueMetrics", "WorkerRegistry",
           "WorkerView"]
