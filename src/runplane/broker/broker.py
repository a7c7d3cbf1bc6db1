"""The job broker: what the job API and the worker routes do to jobs (``services.broker``).

Rules (docs/jobs.md):

- ``submit`` commits the job before it is queued or its id is returned.
- A job popped for a job-take is *reserved* until the response was written; only then is it
  ``confirm``-ed as taken (IN_PROGRESS). If the worker went away first, ``untake`` puts it
  back at the head of the queue without counting a retry.
- A job its worker lost (heartbeats stopped, pings stopped listing it, worker retired) is
  re-queued at the head counting a retry; past ``job_max_retries`` retries it is FAILED.
- Cancel and execution timeout finalize at once (CANCELLED, TIMED_OUT) and push the id to
  the worker's job-stop channel. TTL expiry deletes the job in any state.
- A result for a job that is already final is acknowledged and ignored.

The parts, each in its own module: the queues and long-polls (:mod:`.queues`), the
transitions that end or undo a run (:mod:`.lifecycle`), the time limits (:mod:`.sweeps`),
the start-up rebuild (:mod:`.rebuild`), handing jobs to workers (:mod:`.handoff`), the
workers (:mod:`.workers`) and the group-commit writer (:mod:`.writer`). Everything runs on the
server's event loop thread; SQL writes go through the writer. Time comes from the injected
clock so :meth:`Broker.sweep` can be driven by tests.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from runplane.broker import store as sql
from runplane.broker.endpoints import EndpointDirectory
from runplane.broker.handoff import JobHandoff
from runplane.broker.lifecycle import JobLifecycle
from runplane.broker.models import (
    CANCELLED,
    IN_PROGRESS,
    IN_QUEUE,
    JOB_REQUEUED,
    JOB_SUBMITTED,
    Job,
    JobEvent,
    QueueMetrics,
    Worker,
)
from runplane.broker.queues import JobQueues
from runplane.broker.rebuild import rebuild
from runplane.broker.sweeps import Sweeper
from runplane.broker.workers import WorkerRegistry
from runplane.broker.writer import Writer
from runplane.clock import Clock
from runplane.config import Settings

log = logging.getLogger("runplane.broker")

_ids = random.Random(random.SystemRandom().getrandbits(256))


class Broker:
    """The job broker. ``services.broker``; see the module docstring.

    Interface for the controller:

    - ``queue_metrics(endpoint_id) -> QueueMetrics``
    - ``add_enqueue_listener(callback(endpoint_id))``: called synchronously on every enqueue
      (new job, retry, re-queue of a lost job), e.g. to scale from zero at once.
    - ``add_job_listener(callback(JobEvent))``: every job's submit, re-queue, take and final
      state, for metrics and statistics (runplane.observability).
    - ``endpoint_status``: set by the controller, ``endpoint_id -> dict`` (below).
    - ``workers``: the :class:`WorkerRegistry` (``services.worker_registry``).
    """

    def __init__(
        self, engine: Engine, settings: Settings, clock: Clock, directory: EndpointDirectory
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock
        self.directory = directory
        self.writer = Writer(engine)
        # Every queued and running job, and the most recent final ones (lifecycle).
        self.jobs: dict[str, Job] = {}
        self.queues = JobQueues()
        self.lifecycle = JobLifecycle(self)
        self.sweeper = Sweeper(self)
        # Set by the controller: what it says about an endpoint now, e.g. {"reason": "no
        # machine has ...", "throttled": 1}; shown in /health and on queued jobs' /status.
        self.endpoint_status: Callable[[str], dict[str, Any]] = lambda _endpoint_id: {}
        self.workers = WorkerRegistry(self)
        # The worker routes' operations, under the broker's names (handoff.py).
        h = self.handoff = JobHandoff(self)
        self.take, self.confirm, self.untake = h.take, h.confirm, h.untake
        self.done, self.stream_chunk = h.done, h.stream_chunk
        self._background: set[asyncio.Task] = set()
        self._webhooks: Any = None
        self._closed = False
        self.load()

    # -- start-up and shutdown -----------------------------------------------------------

    def load(self) -> None:
        """Rebuild the in-memory index from the store (workers, queued and running jobs)."""
        rebuild(self)

    @property
    def closed(self) -> bool:
        return self._closed

    def start(self) -> None:
        """Start the sweep loop on the running event loop (idempotent)."""
        if not self.sweeper.running and not self._closed:
            self.sweeper.start()

    def begin_shutdown(self) -> None:
        """Answer every open long-poll now and hold no new ones (the server is stopping)."""
        self._closed = True
        self.queues.release_all()
        self.workers.release_all()
        for job in list(self.jobs.values()):
            job.notify()

    async def shutdown(self) -> None:
        """Release every long-poll at once (so the server stops promptly), stop the sweeps
        and flush pending writes."""
        self.begin_shutdown()
        self.sweeper.stop()
        for t in list(self._background):
            t.cancel()
        if self._webhooks is not None:
            await self._webhooks.aclose()
            self._webhooks = None
        await asyncio.get_running_loop().run_in_executor(None, self.writer.flush)

    def close(self) -> None:
        """Stop the writer thread (after flushing). For tests and process exit."""
        self._closed = True
        self.writer.close()

    # -- controller interface ------------------------------------------------------------

    def add_enqueue_listener(self, callback: Callable[[str], None]) -> None:
        self.queues.listeners.append(callback)

    def add_job_listener(self, callback: Callable[[JobEvent], None]) -> None:
        """``callback(JobEvent)`` on submit, re-queue, take and final state, synchronously on
        the hot path: it must be O(1) and do no I/O. Its exceptions are logged, not raised."""
        self.lifecycle.listeners.append(callback)

    def queue_metrics(self, endpoint_id: str) -> QueueMetrics:
        return self.queues.metrics(endpoint_id)

    # -- client operations ---------------------------------------------------------------

    async def submit(
        self,
        endpoint_id: str,
        user_id: str,
        payload: dict[str, Any],
        *,
        sync: bool,
        ttl_ms: int,
        execution_timeout_ms: int | None,
        low_priority: bool,
        webhook: str | None,
    ) -> Job:
        """Store a new job (committed before this returns) and queue it."""
        now = self.clock.now()
        # A version-4 UUID from a CSPRNG-seeded generator: no syscall (and GIL hand-off) per job;
        # ids are not secrets (every route checks the endpoint's owner).
        job_id = ("sync-" if sync else "") + str(uuid.UUID(int=_ids.getrandbits(128), version=4)) + "-u1"
        payload = {**payload, "id": job_id}
        job = Job(
            id=job_id, endpoint_id=endpoint_id, user_id=user_id, payload=payload,
            created_at=now, expires_at=now + ttl_ms / 1000.0, sync=sync,
            low_priority=low_priority, execution_timeout_ms=execution_timeout_ms, webhook=webhook,
        )
        await self.writer.write((sql.INSERT_JOB, sql.job_row(job)))
        self.jobs[job_id] = job
        self.sweeper.watch_ttl(job)
        self.queues.push(job)
        lifecycle = self.lifecycle
        if lifecycle.listeners:
            lifecycle.emit(JOB_SUBMITTED, job, now)
        return job

    def find(self, job_id: str) -> Job | None:
        """A job by id from memory, else from the store (final jobs); None if gone."""
        job = self.jobs.get(job_id)
        if job is not None:
            return None if job.deleted else job
        job = sql.load_job(self.engine, job_id)
        if job is None:
            return None
        now = self.clock.now()
        if job.expires_at <= now or (job.retain_until is not None and job.retain_until <= now):
            return None  # expired; its row is being deleted
        return job

    async def wait_final(self, job: Job, timeout: float) -> None:
        """Wait until ``job`` is final (and committed) or deleted, at most ``timeout`` s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not ((job.final and job.settled) or job.deleted or self._closed):
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            if not await self.wait_change(job, remaining):
                return

    async def wait_change(self, job: Job, timeout: float) -> bool:
        """Wait for the next chunk or the end of ``job`` (for SSE streams), at most
        ``timeout`` s; False when the time ran out."""
        ev = job.changed or asyncio.Event()
        job.changed = ev
        try:
            await asyncio.wait_for(ev.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def cancel(self, job: Job) -> Job:
        if job.final or job.deleted:
            return job
        holder = job.worker_id if job.status == IN_PROGRESS else job.reserved_by
        fut = self.lifecycle.finalize(job, CANCELLED, None, None)
        if holder:
            self.workers.stop_job(holder, job.id)
        if fut is not None:
            await fut
        return job

    async def retry(self, job: Job) -> Job:
        """Re-queue a FAILED or TIMED_OUT job under the same id (old result removed)."""
        if self.jobs.get(job.id) is not job:
            self.jobs[job.id] = job
        job.status = IN_QUEUE
        job.settled = False
        job.output = job.error = None
        job.worker_id = None
        job.started_at = job.finished_at = job.retain_until = None
        job.chunks = []
        job.stream_delivered = 0
        job.missing_since = None
        await self.writer.write((sql.RESET_JOB, {"_id": job.id}), (sql.DELETE_CHUNKS, {"_id": job.id}))
        self.sweeper.watch_ttl(job)
        self.queues.push(job)
        if self.lifecycle.listeners:
            self.lifecycle.emit(JOB_REQUEUED, job, self.clock.now())
        return job

    async def purge(self, endpoint_id: str) -> int:
        """Cancel every queued (not yet handed out) job of the endpoint; returns how many."""
        removed = self.queues.queued(endpoint_id)
        finalize = self.lifecycle.finalize
        futures = [finalize(job, CANCELLED, None, "removed by purge-queue") for job in removed]
        pending = [f for f in futures if f is not None]
        if pending:
            await asyncio.gather(*pending)
        return len(removed)

    def stream_take(self, job: Job) -> list[Any]:
        """Chunks not handed out yet (each chunk is handed out once)."""
        if self.jobs.get(job.id) is job:
            new = job.chunks[job.stream_delivered:]
        else:  # a final job read from the store
            new = sql.load_chunks(self.engine, job.id, job.stream_delivered)
        if new:
            job.stream_delivered += len(new)
            self.writer.write_nowait(
                (sql.STREAM_CURSOR, {"_id": job.id, "stream_delivered": job.stream_delivered})
            )
        return new

    def waiting_reason(self, job: Job) -> str | None:
        """Why a queued job waits (no machine fits, crash loop...), or None."""
        if job.status != IN_QUEUE:
            return None
        return self.endpoint_status(job.endpoint_id).get("reason")

    # -- worker operations (take, confirm, untake, done, stream_chunk: handoff.py) --------

    def has_queued(self, endpoint_id: str) -> bool:
        """Whether a job-take for the endpoint would be answered at once."""
        return self.queues.has_queued(endpoint_id)

    def release_waiters(self, worker: Worker) -> None:
        """Answer the worker's open job-take long-polls with no job."""
        self.queues.release(worker)

    # -- transitions and sweeps (see lifecycle.py, sweeps.py) ------------------------------

    def lose(self, job: Job, reason: str) -> None:
        """The job's worker lost it: re-queue counting a retry, or FAIL past the limit."""
        self.lifecycle.lose(job, reason)

    def sweep(self, now: float | None = None) -> None:
        """Enforce TTLs, execution timeouts, heartbeats and result retention as of ``now``."""
        self.sweeper.sweep(self.clock.now() if now is None else now)

    def spawn_webhook(self, job: Job) -> None:
        """Deliver ``job``'s webhook in the background (unless the server is stopping)."""
        if self._closed:
            return
        from runplane.broker.webhooks import deliver

        task = asyncio.get_running_loop().create_task(deliver(self, job))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
