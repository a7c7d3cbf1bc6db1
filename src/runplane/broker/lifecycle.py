"""Job state transitions that end or undo a run: finalize, lose (re-queue or fail), delete.

- ``finalize`` sets a final state (COMPLETED, FAILED, CANCELLED, TIMED_OUT), counts it, keeps
  the job in memory among the most recent final ones (for a fast /status), writes it, and
  once that write is committed marks it *settled* (what /runsync waits for) and starts its
  webhook.
- ``lose``: the job's worker lost it; re-queued at the head counting a retry, FAILED past
  ``job_max_retries``.
- ``delete``: TTL expiry; the job is gone in any state (its holder is told to stop it).
- ``time_out``: past its execution timeout; TIMED_OUT and its holder told to stop it.

Every step is told to the job listeners (``Broker.add_job_listener``) as a :class:`JobEvent`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from runplane.broker import store as sql
from runplane.broker.models import (
    COMPLETED,
    FAILED,
    IN_PROGRESS,
    JOB_FINAL,
    JOB_REQUEUED,
    TIMED_OUT,
    Job,
    JobEvent,
)

if TYPE_CHECKING:
    from runplane.broker.broker import Broker

log = logging.getLogger("runplane.broker")

# Final jobs kept in memory for fast /status; older ones are read from the store.
RECENT_FINAL_JOBS = 20_000


class JobLifecycle:
    """See the module docstring. Owned by the :class:`Broker` (``broker.lifecycle``)."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker
        self._final_order: deque[str] = deque()
        # Observers of every job's life (metrics, stats): Broker.add_job_listener.
        self.listeners: list[Callable[[JobEvent], None]] = []

    def emit(self, kind: str, job: Job, at: float) -> None:
        """Tell the job listeners (callers check ``self.listeners`` first: no cost without)."""
        event = JobEvent(kind, job.id, job.endpoint_id, at, job.status, job.worker_id,
                         job.delay_ms(), job.execution_ms())
        for cb in self.listeners:
            try:
                cb(event)
            except Exception:
                log.exception("job listener failed")

    def leave_running(self, job: Job) -> None:
        """``job`` is no longer reserved for or held by a worker."""
        b = self._broker
        if job.reserved or job.status == IN_PROGRESS:
            b.queues.of(job.endpoint_id).in_progress -= 1
            b.workers.releases(job.worker_id if job.status == IN_PROGRESS else None, job)
        job.reserved = False
        job.reserved_by = None

    def finalize(self, job: Job, status: str, output: Any, error: str | None) -> asyncio.Future | None:
        """Set a final state; returns the future of its write (None when already final, or
        when the write ran at once because the writer is closed)."""
        if job.final:
            return None
        b = self._broker
        self.leave_running(job)
        b.queues.remove(job)
        now = b.clock.now()
        job.status = status
        job.output = output
        job.error = error
        job.finished_at = now
        job.settled = False
        retention = (
            b.settings.runsync_result_retention_s if job.sync else b.settings.run_result_retention_s
        )
        job.retain_until = min(now + retention, job.expires_at)
        q = b.queues.of(job.endpoint_id)
        if status == COMPLETED:
            q.completed += 1
        elif status in (FAILED, TIMED_OUT):
            q.failed += 1
        if self.listeners:
            self.emit(JOB_FINAL, job, now)
        self._final_order.append(job.id)
        jobs = b.jobs
        while len(self._final_order) > RECENT_FINAL_JOBS:
            old = jobs.get(self._final_order.popleft())
            if old is not None and old.final:
                del jobs[old.id]
        fut = b.writer.write_nowait((sql.FINISH_JOB, sql.finish_params(job)))
        if fut is None:
            job.settled = True
            job.notify()
            return None
        fut.add_done_callback(lambda f, job=job: self._after_final(job, f))
        return fut

    def _after_final(self, job: Job, fut: asyncio.Future) -> None:
        if fut.cancelled() or fut.exception() is not None:
            return
        job.settled = True
        job.notify()
        if job.webhook:
            self._broker.spawn_webhook(job)

    def lose(self, job: Job, reason: str) -> None:
        """The job's worker lost it: re-queue counting a retry, or FAIL past the limit."""
        if job.final or job.deleted:
            return
        b = self._broker
        self.leave_running(job)
        limit = b.settings.job_max_retries
        if job.retries >= limit:
            self.finalize(job, FAILED, None, f"{reason}; out of retries ({limit})")
            return
        job.retries += 1
        b.queues.of(job.endpoint_id).retried += 1
        log.info("job %s re-queued (retry %d): %s", job.id, job.retries, reason,
                 extra={"job_id": job.id, "endpoint_id": job.endpoint_id})
        job.worker_id = None
        job.started_at = None
        b.writer.write_nowait((sql.REQUEUE_JOB, {"_id": job.id, "retries": job.retries}))
        b.queues.push(job, front=True)
        if self.listeners:
            self.emit(JOB_REQUEUED, job, b.clock.now())

    def delete(self, job: Job, reason: str) -> None:
        """Remove ``job`` in any state (TTL expiry); its holder is told to stop it."""
        b = self._broker
        holder = job.worker_id if job.status == IN_PROGRESS else job.reserved_by
        self.leave_running(job)
        b.queues.remove(job)
        if holder:
            b.workers.stop_job(holder, job.id)
        job.deleted = True
        b.jobs.pop(job.id, None)
        job.notify()
        log.info("job %s deleted: %s", job.id, reason,
                 extra={"job_id": job.id, "endpoint_id": job.endpoint_id})
        b.writer.write_nowait((sql.DELETE_JOB, {"_id": job.id}), (sql.DELETE_CHUNKS, {"_id": job.id}))

    def time_out(self, job: Job, limit_ms: int) -> None:
        """Past its execution timeout: TIMED_OUT, and its worker told to stop it."""
        holder = job.worker_id
        self.finalize(job, TIMED_OUT, None, f"execution timeout of {limit_ms} ms exceeded")
        if holder:
            self._broker.workers.stop_job(holder, job.id)
