"""The book's transitions: :class:`JobBook`, the one way in (see the package docstring).

- ``admit``: a new job (its row already committed) is queued.
- ``reserve`` / ``park``: a job-take's step: queued jobs are reserved for the worker (out of
  the queue, counted in progress) / it waits, and the next jobs queued are reserved for it
  (:mod:`.places`).
- ``confirm`` / ``untake``: a job-take response was written (the jobs are taken) / could not
  be written (back to the head of the queue, no retry counted).
- ``progress`` / ``stream_chunk`` (``unstream``) / ``stream_handed``: a running job's
  progress output, a stream chunk (one that could not be stored), ``/stream``'s cursor
  (:mod:`.outputs`).
- ``finalize``: COMPLETED, FAILED, CANCELLED or TIMED_OUT; counted, written, settled once
  committed; its bytes leave the held-bytes budgets (:mod:`runplane.broker.budget`) at once.
- ``keep``: a settled final job stays in memory among the just-finished ones (a fast
  ``/status``) while the cache's count and bytes allow; the oldest leave it (memory), and are
  read back from the store.
- ``lose``: its worker lost it; re-queued at the head counting a retry, FAILED past
  ``max_retries``. ``delete``: TTL expiry, gone in any state. ``time_out``: past its
  execution timeout. ``cancel``, ``purge``, ``requeue`` (a user's retry), ``report``
  (a worker's result).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from runplane.broker import store as sql
from runplane.broker.budget import HeldBytes, JustFinished
from runplane.broker.effects import Effects, event
from runplane.broker.models import (
    CANCELLED,
    COMPLETED,
    FAILED,
    IN_PROGRESS,
    IN_QUEUE,
    JOB_FINAL,
    JOB_REQUEUED,
    JOB_SUBMITTED,
    JOB_TAKEN,
    TIMED_OUT,
    Job,
    Worker,
)
from runplane.broker.book.outputs import Outputs
from runplane.broker.book.places import Places

log = logging.getLogger("runplane.broker")

# Final jobs kept in memory for fast /status, at most this many and (inputs, outputs and
# chunks) this many bytes; older ones are read from the store.
RECENT_FINAL_JOBS = 20_000
RESULT_CACHE_BYTES = 64_000_000


class JobBook:
    """See the package docstring. ``worker_of`` finds a registered worker by id; ``held``
    counts the bytes of queued and running jobs (no budget by default)."""

    def __init__(self, worker_of: Callable[[str], Worker | None], *,
                 max_retries: int, run_retention_s: float, runsync_retention_s: float,
                 recent_final: int = RECENT_FINAL_JOBS, held: HeldBytes | None = None,
                 cache_bytes: int = RESULT_CACHE_BYTES) -> None:
        self.jobs: dict[str, Job] = {}
        self.held = held if held is not None else HeldBytes()
        # Its parts' transitions and reads, bound (the job-take is the hottest route: no
        # extra call on its way).
        self._places = places = Places(worker_of)
        self.reserve = places.reserve
        self.park = places.park
        self.answer_polls = places.answer_polls
        self.prune_polls = places.prune_polls
        self.seed_counters = places.seed_counters
        self.has_queued = places.has_queued
        self.check_room = places.check_room
        self.metrics = places.metrics
        self.queued = places.queued
        self.running = places.running
        outputs = Outputs(self.held)
        self.progress = outputs.progress
        self.stream_chunk = outputs.stream_chunk
        self.unstream = outputs.unstream
        self.stream_handed = outputs.stream_handed
        self._worker_of = worker_of
        self._max_retries = max_retries
        self._run_retention_s = run_retention_s
        self._runsync_retention_s = runsync_retention_s
        self.finished = JustFinished(recent_final, cache_bytes)

    # -- into the queue ------------------------------------------------------------------

    def admit(self, job: Job, now: float) -> Effects:
        """A new job, whose row is committed: queue it."""
        fx = Effects()
        self.jobs[job.id] = job
        if not job.held:  # (the broker counts it before its row is written)
            self.held.add(job, job.size)
        self._enqueue(fx, job)
        fx.events.append(event(JOB_SUBMITTED, job, now))
        return fx

    def reset(self, job: Job) -> None:
        """A user's retry of a FAILED or TIMED_OUT job, once its reset is committed: same
        id, old result gone; :meth:`requeue` queues it."""
        if self.jobs.get(job.id) is not job:
            self.jobs[job.id] = job
        self.finished.drop(job)
        job.status = IN_QUEUE
        job.settled = False
        job.output = job.error = None
        job.worker_id = None
        job.started_at = job.finished_at = job.retain_until = None
        job.chunks = []
        job.stream_delivered = job.nchunks = 0
        job.chunks_in_store = False
        job.chunk_bytes = job.output_bytes = 0
        job.missing_since = None
        self.held.release(job)
        self.held.add(job, job.size)

    def requeue(self, job: Job, now: float) -> Effects:
        """Queue a job :meth:`reset` for a retry."""
        fx = Effects()
        self._enqueue(fx, job)
        fx.events.append(event(JOB_REQUEUED, job, now))
        return fx

    def restore(self, job: Job, holder: Worker | None) -> Effects:
        """Start-up: a job the store has as queued or running. A running job stays with its
        worker when that worker is registered again, else it goes back to the queue without
        a retry (the server, not the worker, went away). Nobody is told: nothing listens
        yet."""
        fx = Effects()
        self.jobs[job.id] = job
        self.held.add(job, job.size)
        if job.status == IN_PROGRESS and holder is not None:
            self._places.of(job.endpoint_id).in_progress += 1
            self._places.hold(holder, job)
            fx.workers.append(holder)
            return fx
        if job.status == IN_PROGRESS:
            job.status = IN_QUEUE
            job.worker_id = None
            job.started_at = None
            fx.writes.append((sql.REQUEUE_JOB, {"_id": job.id, "retries": job.retries}))
        self._places.queue(job)
        return fx

    # -- to workers ----------------------------------------------------------------------

    def confirm(self, worker: Worker, jobs: list[Job], now: float) -> Effects:
        """The job-take response carrying ``jobs`` (reserved for ``worker``) was written."""
        fx = Effects()
        if jobs:
            worker.handing -= 1
        for job in jobs:
            job.reserved = False
            job.reserved_by = None
            if job.final or job.deleted:
                # Cancelled or expired while the response was on its way.
                fx.stops.append((worker.id, job.id))
                continue
            job.status = IN_PROGRESS
            job.worker_id = worker.id
            job.started_at = now
            job.missing_since = None
            self._places.hold(worker, job)
            fx.writes.append((sql.TAKE_JOB, {"_id": job.id, "worker_id": worker.id,
                                             "started_at": now, "delay_ms": job.delay_ms()}))
            fx.events.append(event(JOB_TAKEN, job, now))
        if fx.writes:
            fx.workers.append(worker)
        return fx

    def untake(self, jobs: list[Job], worker: Worker | None) -> None:
        """The job-take response could not be written: back to the head of the queue (no
        listener is told: the job was queued all along as far as they know)."""
        if worker is not None and jobs:
            worker.handing -= 1
        for job in reversed(jobs):
            if job.reserved and not job.final and not job.deleted:
                # Reserved, never held: only the in-progress count was taken.
                self._places.of(job.endpoint_id).in_progress -= 1
                self._places.queue(job, front=True)

    def report(self, job: Job, worker: Worker, status: str, output: Any, error: str | None,
               now: float, size: int = 0) -> Effects:
        """``worker``'s final result for ``job`` (COMPLETED or FAILED), ``size`` bytes as
        posted. If the job was handed to another worker meanwhile, the first result wins and
        that one stops."""
        holder = job.worker_id if job.status == IN_PROGRESS else job.reserved_by
        fx = Effects()
        self._finalize(fx, job, status, output, error, now, size)
        if holder and holder != worker.id:
            fx.stops.append((holder, job.id))
        return fx

    def reconcile_ping(self, worker: Worker, listed: set[str],
                       now: float) -> tuple[dict[str, tuple[float, float]], Effects]:
        """A heartbeat listing the jobs ``worker`` holds (running or queued locally). A held
        job it stops listing is marked missing (lost after a grace period, by the registry's
        sweep); a job it lists that already ended here (cancelled, timed out) is *overdue*:
        it is told again to stop it. A job it lists that is queued here (its take was not
        stored before the server went down) is its again, taken without a retry. Returns
        the overdue jobs, id -> (ended, now)."""
        fx = Effects()
        for job in worker.jobs.values():
            if job.id in listed:
                job.missing_since = None
            elif job.missing_since is None:
                job.missing_since = now
        overdue: dict[str, tuple[float, float]] = {}
        for job_id in listed:
            if job_id not in worker.jobs:
                found = self.jobs.get(job_id)
                if found is None:
                    continue
                job = found
                if job.final and job.worker_id == worker.id:
                    fx.stops.append((worker.id, job_id))
                    overdue[job_id] = (job.finished_at or now, now)
                elif job.queued and job.endpoint_id == worker.endpoint_id and worker.can_take():
                    self._reclaim(fx, worker, job, now)
        return overdue, fx

    def _reclaim(self, fx: Effects, worker: Worker, job: Job, now: float) -> None:
        """``worker`` runs ``job``, which the store (and so the book) has as queued."""
        self._places.unqueue(job)
        self._places.of(job.endpoint_id).in_progress += 1
        job.status = IN_PROGRESS
        job.worker_id = worker.id
        job.started_at = now
        self._places.hold(worker, job)
        log.info("job %s taken back by worker %s, which still runs it", job.id, worker.id,
                 extra={"job_id": job.id, "worker_id": worker.id})
        fx.writes.append((sql.TAKE_JOB, {"_id": job.id, "worker_id": worker.id,
                                         "started_at": now, "delay_ms": job.delay_ms()}))
        fx.events.append(event(JOB_TAKEN, job, now))
        fx.workers.append(worker)

    # -- out of the queue ----------------------------------------------------------------

    def cancel(self, job: Job, now: float) -> Effects:
        """CANCELLED, and its holder (running or about to) told to stop it."""
        fx = Effects()
        if job.final or job.deleted:
            return fx
        holder = job.worker_id if job.status == IN_PROGRESS else job.reserved_by
        self._finalize(fx, job, CANCELLED, None, None, now)
        if holder:
            fx.stops.append((holder, job.id))
        return fx

    def purge(self, endpoint_id: str, now: float) -> tuple[int, Effects]:
        """Cancel every queued (not yet handed out) job of the endpoint; how many."""
        fx = Effects()
        removed = self._places.queued(endpoint_id)
        for job in removed:
            self._finalize(fx, job, CANCELLED, None, "removed by purge-queue", now)
        return len(removed), fx

    def time_out(self, job: Job, limit_ms: int, now: float) -> Effects:
        """Past its execution timeout: TIMED_OUT, and its worker told to stop it."""
        fx = Effects()
        holder = job.worker_id
        self._finalize(fx, job, TIMED_OUT, None, f"execution timeout of {limit_ms} ms exceeded",
                       now)
        if holder:
            fx.stops.append((holder, job.id))
        return fx

    def lose(self, jobs: Iterable[Job], reason: str, now: float) -> Effects:
        """Their worker lost them: each re-queued at the head counting a retry, or FAILED
        once out of retries."""
        fx = Effects()
        for job in jobs:
            self._lose(fx, job, reason, now)
        return fx

    def delete(self, job: Job, reason: str, now: float) -> Effects:
        """Remove ``job`` in any state (TTL expiry); its holder is told to stop it."""
        fx = Effects()
        holder = job.worker_id if job.status == IN_PROGRESS else job.reserved_by
        self._places.leave_running(fx, job, now)
        self._places.unqueue(job)
        if holder:
            fx.stops.append((holder, job.id))
        job.deleted = True
        self.jobs.pop(job.id, None)
        self.held.release(job)
        self.finished.drop(job)
        job.notify()
        log.info("job %s deleted: %s", job.id, reason,
                 extra={"job_id": job.id, "endpoint_id": job.endpoint_id})
        fx.writes.append((sql.DELETE_JOB, {"_id": job.id}))
        fx.writes.append((sql.DELETE_CHUNKS, {"_id": job.id}))
        return fx

    def forget_results(self, job_ids: Iterable[str]) -> Effects:
        """Final jobs past their result retention: gone from memory and the store."""
        fx = Effects()
        for job_id in job_ids:
            job = self.jobs.get(job_id)
            if job is not None and job.final:
                del self.jobs[job_id]
                self.finished.drop(job)
                job.deleted = True
            fx.writes.append((sql.DELETE_JOB, {"_id": job_id}))
            fx.writes.append((sql.DELETE_CHUNKS, {"_id": job_id}))
        return fx

    # -- what memory holds ---------------------------------------------------------------

    def keep(self, job: Job) -> None:
        """``job``'s final state is stored: kept among the just-finished jobs while the
        cache allows (:class:`~runplane.broker.budget.JustFinished`)."""
        if self.jobs.get(job.id) is job:
            self.finished.keep(job, self.jobs)

    # -- the steps -----------------------------------------------------------------------

    def _enqueue(self, fx: Effects, job: Job, front: bool = False) -> None:
        self._places.queue(job, front)
        fx.enqueued.append(job.endpoint_id)

    def _finalize(self, fx: Effects, job: Job, status: str, output: Any, error: str | None,
                  now: float, size: int = 0) -> None:
        if job.final:
            return
        self._places.leave_running(fx, job, now)
        self._places.unqueue(job)
        # Out of the budgets: a result is never refused; memory keeps it only in the cache.
        self.held.release(job)
        job.status = status
        job.output = output
        job.output_bytes = size
        job.error = error
        job.finished_at = now
        job.settled = False
        retention = self._runsync_retention_s if job.sync else self._run_retention_s
        job.retain_until = min(now + retention, job.expires_at)
        q = self._places.of(job.endpoint_id)
        if status == COMPLETED:
            q.completed += 1
        elif status in (FAILED, TIMED_OUT):
            q.failed += 1
        fx.events.append(event(JOB_FINAL, job, now))
        fx.writes.append((sql.FINISH_JOB, sql.finish_params(job)))
        fx.finals.append(job)

    def _lose(self, fx: Effects, job: Job, reason: str, now: float) -> None:
        if job.final or job.deleted or job.status != IN_PROGRESS:
            return  # only a job on a worker can be lost by it
        if job.retries >= self._max_retries:
            # (_finalize leaves the run itself: leaving it here too counted it twice.)
            self._finalize(fx, job, FAILED, None,
                           f"{reason}; out of retries ({self._max_retries})", now)
            return
        self._places.leave_running(fx, job, now)
        job.retries += 1
        self._places.of(job.endpoint_id).retried += 1
        log.info("job %s re-queued (retry %d): %s", job.id, job.retries, reason,
                 extra={"job_id": job.id, "endpoint_id": job.endpoint_id})
        job.worker_id = None
        job.started_at = None
        fx.writes.append((sql.REQUEUE_JOB, {"_id": job.id, "retries": job.retries}))
        self._enqueue(fx, job, front=True)
        fx.events.append(event(JOB_REQUEUED, job, now))
