"""Where each job is: in its queue, reserved for a job-take, or held by its worker.

:class:`Places` is the floor under the book's transitions (:mod:`.transitions`): the steps
they are made of, each moving one job between those places and keeping the package's
invariant (its queue's counts, ``in_progress``, the worker's holds) as it goes, and the
job-take's own step: :meth:`Places.reserve` takes queued jobs out of the queue for a worker
(reserved until its response is written: ``JobBook.confirm`` / ``untake``), and a take that
found nothing is parked (:meth:`~Places.park`) and handed the next jobs queued. The queues
(:mod:`.queues`) keep the order; every field of a job these steps change is changed here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from runplane.broker.book.queues import EndpointQueue, JobQueues
from runplane.broker.effects import Effects
from runplane.broker.models import IN_PROGRESS, IN_QUEUE, Job, Worker


class Places:
    """The book's queues and worker holds; see the module docstring. ``worker_of`` finds a
    registered worker by id."""

    def __init__(self, worker_of: Callable[[str], Worker | None]) -> None:
        self._worker_of = worker_of
        self._queues = queues = JobQueues()
        # The queues' reads, bound (the job-take route asks has_queued first: no extra call),
        # and an endpoint's queue, whose counters the transitions count.
        self.of = queues.of
        self._add, self._take = queues.add, queues.take
        self.has_queued = queues.has_queued
        self.check_room = queues.check_room
        self.metrics = queues.metrics
        self.queued = queues.queued
        self.running = queues.running

    # -- the job-take --------------------------------------------------------------------

    def reserve(self, worker: Worker, n: int) -> list[Job] | None:
        """A job-take's step: up to ``n`` queued jobs of ``worker``'s endpoint, normal ones
        first, reserved for it (out of the queue, counted in progress) until the book's
        ``confirm`` or ``untake``; None when none is queued (the take waits: :meth:`park`)."""
        q = self._queues.get(worker.endpoint_id)
        if q is None or not (q.n_normal or q.n_low):
            return None
        # (_reserve, inlined: the job-take is the hottest route.)
        out = self._take(q, n)
        if out:
            worker_id = worker.id
            for job in out:
                job.queued = False
                job.reserved = True
                job.reserved_by = worker_id
            q.in_progress += len(out)
            worker.handing += 1  # until JobHandoff.confirm/untake
        return out

    def park(self, worker: Worker, n: int, future: asyncio.Future) -> None:
        """A job-take that found nothing queued waits: ``future`` is answered with the next
        jobs queued for its endpoint, reserved for it (or [], see :meth:`answer_polls`)."""
        self._queues.park(worker, n, future)

    def answer_polls(self, worker: Worker | None = None) -> None:
        """Answer ``worker``'s open job-take long-polls (every worker's: None) with no job."""
        if worker is None:
            self._queues.release_all()
        else:
            self._queues.release(worker)

    def prune_polls(self) -> None:
        """Forget the long-polls that ended (timed out, client gone)."""
        self._queues.prune_waiters()

    def seed_counters(self, endpoint_id: str, completed: int, failed: int,
                      retried: int) -> None:
        """Start-up: the endpoint's counters as the store's retained jobs have them."""
        q = self._queues.of(endpoint_id)
        q.completed, q.failed, q.retried = completed, failed, retried

    # -- the steps -----------------------------------------------------------------------

    def queue(self, job: Job, front: bool = False) -> None:
        """Into its queue (IN_QUEUE) at the tail, or at the head (``front``, a job handed
        back); to a waiting long-poll at once if there is one."""
        job.status = IN_QUEUE
        job.reserved = False
        job.reserved_by = None
        job.queued = True
        job.qseq += 1
        q = self._add(job, front)
        if q.waiters:
            self._hand_out(q)

    def unqueue(self, job: Job) -> None:
        """Out of its queue (lazily: its entry goes stale)."""
        if job.queued:
            job.queued = False
            job.qseq += 1
            self._queues.drop(job)

    def hold(self, worker: Worker, job: Job) -> None:
        worker.jobs[job.id] = job
        worker.idle_since = None

    def leave_running(self, fx: Effects, job: Job, now: float) -> None:
        """``job`` is no longer reserved for or held by a worker."""
        if job.reserved or job.status == IN_PROGRESS:
            self._queues.of(job.endpoint_id).in_progress -= 1
            w = self._worker_of(job.worker_id) if job.status == IN_PROGRESS and job.worker_id \
                else None
            if w is not None and w.jobs.pop(job.id, None) is not None:
                if not w.jobs:
                    w.idle_since = now
                fx.workers.append(w)
        job.reserved = False
        job.reserved_by = None

    def _reserve(self, q: EndpointQueue, n: int, worker: Worker) -> list[Job]:
        out = self._take(q, n)
        if out:
            worker_id = worker.id
            for job in out:
                job.queued = False
                job.reserved = True
                job.reserved_by = worker_id
            q.in_progress += len(out)
            worker.handing += 1  # until JobHandoff.confirm/untake
        return out

    def _hand_out(self, q: EndpointQueue) -> None:
        """Queued jobs to the oldest waiting long-polls, in turn."""
        waiters = q.waiters
        while waiters and (q.n_normal or q.n_low):
            w = waiters.popleft()
            if w.future.done():
                continue
            if not w.worker.can_take():
                w.future.set_result([])
                continue
            w.future.set_result(self._reserve(q, w.n, w.worker))
