"""Start-up: rebuild the broker's in-memory index from the store, which is the truth.

- Workers not EXITED come back with their credentials and a fresh heartbeat grace period.
- The per-endpoint counters (completed, failed, retried) are seeded from retained jobs.
- Queued jobs are queued again in submission order; a running job stays with its worker
  (and its execution timeout) when that worker is still registered, else it is put back in
  the queue without counting a retry (the server, not the worker, went away).
- Every job's TTL is armed again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runplane.broker import store as sql
from runplane.broker.models import COMPLETED, FAILED, IN_PROGRESS, IN_QUEUE, TIMED_OUT

if TYPE_CHECKING:
    from runplane.broker.broker import Broker


def rebuild(broker: Broker) -> None:
    broker.workers.load()
    for ep, counts in sql.load_counters(broker.engine).items():
        q = broker.queues.of(ep)
        q.completed = counts.get(COMPLETED, 0)
        q.failed = counts.get(FAILED, 0) + counts.get(TIMED_OUT, 0)
        q.retried = counts.get("retried", 0)
    for job, _ in sql.load_active(broker.engine):
        broker.jobs[job.id] = job
        broker.sweeper.watch_ttl(job)
        if job.status == IN_PROGRESS:
            w = broker.workers.get(job.worker_id) if job.worker_id else None
            if w is not None:
                broker.queues.of(job.endpoint_id).in_progress += 1
                broker.workers.holds(w, job)
                broker.sweeper.watch_execution(job)
                continue
            job.status = IN_QUEUE
            job.worker_id = None
            job.started_at = None
            broker.writer.write_nowait((sql.REQUEUE_JOB, {"_id": job.id, "retries": job.retries}))
        broker.queues.push(job, notify=False)
