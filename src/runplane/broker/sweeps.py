"""The time limits, enforced by a periodic sweep: TTL, execution timeout, heartbeats, retention.

Deadlines are kept in two heaps, so a sweep costs only the jobs that are due:

- TTL (``expires_at``, from submission): the job is deleted in any state.
- Execution timeout (from the job-take): the job is TIMED_OUT and its worker told to stop it.
  An entry carries the ``started_at`` it was pushed for, so one from an earlier run of a
  re-queued job is ignored.

Then the worker heartbeats (:meth:`WorkerRegistry.sweep`), the long-polls that ended are
dropped, and final jobs past their result retention are deleted (read from the store, whose
``retain_until`` index makes that a range scan).

:meth:`Sweeper.sweep` takes ``now`` so that tests drive it with their own clock.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from typing import TYPE_CHECKING

from runplane.broker import store as sql
from runplane.broker.models import IN_PROGRESS, Job

if TYPE_CHECKING:
    from runplane.broker.broker import Broker

log = logging.getLogger("runplane.broker")


class Sweeper:
    """See the module docstring. Owned by the :class:`Broker` (``broker.sweeper``)."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker
        self._ttl_heap: list[tuple[float, str]] = []
        self._exec_heap: list[tuple[float, str, float]] = []
        self._task: asyncio.Task | None = None

    def watch_ttl(self, job: Job) -> None:
        heapq.heappush(self._ttl_heap, (job.expires_at, job.id))

    def watch_execution(self, job: Job) -> None:
        """``job`` was just taken (``started_at`` set): arm its execution timeout."""
        assert job.started_at is not None
        deadline = job.started_at + self.timeout_ms(job) / 1000.0
        heapq.heappush(self._exec_heap, (deadline, job.id, job.started_at))

    def timeout_ms(self, job: Job) -> int:
        return job.execution_timeout_ms or self._broker.directory.execution_timeout_ms(job.endpoint_id)

    def sweep(self, now: float) -> None:
        b = self._broker
        jobs = b.jobs
        while self._ttl_heap and self._ttl_heap[0][0] <= now:
            deadline, job_id = heapq.heappop(self._ttl_heap)
            job = jobs.get(job_id)
            if job is not None and not job.final and job.expires_at == deadline:
                b.lifecycle.delete(job, "ttl expired")
        while self._exec_heap and self._exec_heap[0][0] <= now:
            _, job_id, started = heapq.heappop(self._exec_heap)
            job = jobs.get(job_id)
            if job is not None and job.status == IN_PROGRESS and job.started_at == started:
                b.lifecycle.time_out(job, self.timeout_ms(job))
        b.workers.sweep(now)
        b.queues.prune_waiters()
        self._expire_results(now)

    def _expire_results(self, now: float) -> None:
        b = self._broker
        ids = sql.expired_ids(b.engine, now)
        if not ids:
            return
        ops = []
        for job_id in ids:
            job = b.jobs.get(job_id)
            if job is not None and job.final:
                del b.jobs[job_id]
                job.deleted = True
            ops.append((sql.DELETE_JOB, {"_id": job_id}))
            ops.append((sql.DELETE_CHUNKS, {"_id": job_id}))
        b.writer.write_nowait(*ops)

    # -- the loop ------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _loop(self) -> None:
        b = self._broker
        interval = b.settings.broker_sweep_interval_s
        while not b.closed:
            await asyncio.sleep(interval)
            try:
                b.sweep()
            except Exception:
                log.exception("broker sweep failed")
