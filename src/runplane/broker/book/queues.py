"""Per-endpoint job queues and the job-take long-polls waiting on them (in memory only).

Each endpoint has two FIFO queues, normal and ``policy.lowPriority``; a take drains the
normal one first. Removal is lazy: a queue entry is ``(job, qseq)`` and is stale once the
job's ``qseq`` moved on (taken, cancelled, deleted), so cancelling a queued job is O(1).
A job-take that finds nothing parks a :class:`Waiter`, answered by the next enqueue.

The queues also carry the endpoint's live counters (in progress, completed, failed,
retried) that :meth:`JobQueues.metrics` reports to the autoscaler.

This module only orders: it keeps the entries, their counts and bytes, and the waiting
long-polls, in order. It writes no job's state: whether a job is queued (``Job.queued``,
``qseq``), reserved, taken or final, and the counters, are the job book's to change (its
:mod:`.places`, the one holder of the queues), which calls :meth:`JobQueues.add`,
:meth:`~JobQueues.drop` and :meth:`~JobQueues.take` as it does.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

from runplane.broker.models import Job, QueueMetrics, Worker
from runplane.errors import RateLimited, TooLarge


@dataclass(eq=False)
class Waiter:
    """An open job-take long-poll: answered with the jobs reserved for it (or [])."""

    worker: Worker
    future: asyncio.Future
    n: int


@dataclass(eq=False)
class EndpointQueue:
    normal: deque = field(default_factory=deque)
    low: deque = field(default_factory=deque)
    n_normal: int = 0
    n_low: int = 0
    # Request bytes of the queued jobs (their ``size``), for the queued-bytes cap.
    queued_bytes: int = 0
    waiters: deque = field(default_factory=deque)
    # The counters: written by the book's transitions only.
    in_progress: int = 0
    completed: int = 0
    failed: int = 0
    retried: int = 0


class JobQueues:
    """Every endpoint's :class:`EndpointQueue`; see the module docstring."""

    def __init__(self) -> None:
        self._by_endpoint: dict[str, EndpointQueue] = {}

    def get(self, endpoint_id: str) -> EndpointQueue | None:
        return self._by_endpoint.get(endpoint_id)

    def of(self, endpoint_id: str) -> EndpointQueue:
        q = self._by_endpoint.get(endpoint_id)
        if q is None:
            q = self._by_endpoint[endpoint_id] = EndpointQueue()
        return q

    def has_queued(self, endpoint_id: str) -> bool:
        q = self._by_endpoint.get(endpoint_id)
        return q is not None and bool(q.n_normal or q.n_low)

    def check_room(self, endpoint_id: str, n: int, size: int, max_jobs: int,
                   max_bytes: int) -> None:
        """``RateLimited`` (429) unless ``n`` more jobs of ``size`` bytes fit in the
        endpoint's queue, ``TooLarge`` (413) when they could never fit; a cap of 0 is none."""
        if max_jobs and n > max_jobs:
            raise TooLarge(f"{n:,} jobs at once are more than the queue holds ({max_jobs:,})")
        if max_bytes and size > max_bytes:
            raise TooLarge(f"{size:,} bytes of inputs are more than the queue holds "
                           f"({max_bytes:,} bytes)")
        q = self._by_endpoint.get(endpoint_id)
        if q is None:
            return
        full = ""
        if max_jobs and q.n_normal + q.n_low + n > max_jobs:
            full = f"{max_jobs:,} jobs waiting"
        elif max_bytes and size and q.queued_bytes + size > max_bytes:
            full = f"{max_bytes:,} bytes of inputs waiting"
        if full:
            raise RateLimited(5.0, f"the endpoint's queue is full ({full}); send it again "
                                   "once its workers have taken some")

    def add(self, job: Job, front: bool = False) -> EndpointQueue:
        """An entry for ``job``, which the book just marked queued (its new ``qseq``), at
        the tail or at the head (``front``, a job handed back); its endpoint's queue."""
        q = self.of(job.endpoint_id)
        entry = (job, job.qseq)
        d = q.low if job.low_priority else q.normal
        if front:
            d.appendleft(entry)
        else:
            d.append(entry)
        if job.low_priority:
            q.n_low += 1
        else:
            q.n_normal += 1
        q.queued_bytes += job.size
        return q

    def drop(self, job: Job) -> None:
        """``job`` left its queue (the book moved its ``qseq`` on): no longer counted; its
        entry is stale and skipped."""
        q = self.of(job.endpoint_id)
        if job.low_priority:
            q.n_low -= 1
        else:
            q.n_normal -= 1
        q.queued_bytes -= job.size

    def take(self, q: EndpointQueue, n: int) -> list[Job]:
        """The first ``n`` queued jobs of ``q``, normal ones first, out of its entries and
        counts (the book marks them not queued at once: stale entries are skipped by
        ``Job.queued`` and ``qseq``, and each job has one live entry)."""
        out: list[Job] = []
        for d in (q.normal, q.low):
            while d and len(out) < n:
                job, seq = d.popleft()
                if not job.queued or seq != job.qseq:
                    continue
                if job.low_priority:
                    q.n_low -= 1
                else:
                    q.n_normal -= 1
                q.queued_bytes -= job.size
                out.append(job)
        return out

    def park(self, worker: Worker, n: int, future: asyncio.Future) -> None:
        """A job-take that found nothing waits, after those already waiting."""
        self.of(worker.endpoint_id).waiters.append(Waiter(worker, future, n))

    def queued(self, endpoint_id: str) -> list[Job]:
        """The endpoint's queued jobs, normal ones first, each in queue order."""
        q = self._by_endpoint.get(endpoint_id)
        if q is None:
            return []
        return [job for job, seq in (*q.normal, *q.low) if job.queued and seq == job.qseq]

    def running(self) -> int:
        """Jobs handed to workers and not final, over every endpoint."""
        return sum(q.in_progress for q in self._by_endpoint.values())

    def release(self, worker: Worker) -> None:
        """Answer the worker's open long-polls with no job."""
        q = self._by_endpoint.get(worker.endpoint_id)
        if q is None:
            return
        for w in q.waiters:
            if w.worker is worker and not w.future.done():
                w.future.set_result([])

    def release_all(self) -> None:
        """Answer every open long-poll with no job (shutdown)."""
        for q in self._by_endpoint.values():
            while q.waiters:
                w = q.waiters.popleft()
                if not w.future.done():
                    w.future.set_result([])

    def prune_waiters(self) -> None:
        """Drop the long-polls that ended (timed out, client gone) from the waiter lists."""
        for q in self._by_endpoint.values():
            if q.waiters and any(w.future.done() for w in q.waiters):
                q.waiters = deque(w for w in q.waiters if not w.future.done())

    def metrics(self, endpoint_id: str) -> QueueMetrics:
        q = self._by_endpoint.get(endpoint_id)
        if q is None:
            return QueueMetrics(0, 0, 0, None, 0, 0, 0)
        oldest = None
        while q.normal:
            job, seq = q.normal[0]
            if job.queued and seq == job.qseq:
                oldest = job.created_at
                break
            q.normal.popleft()
        return QueueMetrics(
            in_queue=q.n_normal + q.n_low,
            in_queue_normal=q.n_normal,
            in_progress=q.in_progress,
            oldest_queued_at=oldest,
            completed=q.completed,
            failed=q.failed,
            retried=q.retried,
        )
