"""Per-endpoint job queues, the long-poll hand-off, and the sweeps that enforce time limits.

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

Everything runs on the server's event loop thread; SQL writes go through :class:`Writer`.
Time comes from the injected clock so :meth:`sweep` can be driven by tests.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import random
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Engine

from runplane.broker import store as sql
from runplane.broker.endpoints import EndpointDirectory
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
    JobEvent,
    QueueMetrics,
)
from runplane.broker.workers import Worker, WorkerRegistry
from runplane.broker.writer import Writer
from runplane.clock import Clock
from runplane.config import Settings

log = logging.getLogger("runplane.broker")

_ids = random.Random(random.SystemRandom().getrandbits(256))

# Final jobs kept in memory for fast /status; older ones are read from the store.
RECENT_FINAL_JOBS = 20_000


@dataclass(eq=False)
class _Waiter:
    worker: Worker
    future: asyncio.Future
    n: int


@dataclass(eq=False)
class _EndpointQueue:
    normal: deque = field(default_factory=deque)
    low: deque = field(default_factory=deque)
    n_normal: int = 0
    n_low: int = 0
    waiters: deque = field(default_factory=deque)
    in_progress: int = 0
    completed: int = 0
    failed: int = 0
    retried: int = 0


class Broker:
    """The job broker. ``services.broker``; see the module docstring.

    Interface for the controller:

    - ``queue_metrics(endpoint_id) -> QueueMetrics``
    - ``add_enqueue_listener(callback(endpoint_id))``: called synchronously on every enqueue
      (new job, retry, re-queue of a lost job), e.g. to scale from zero at once.
    - ``add_job_listener(callback(JobEvent))``: every job's submit, re-queue, take and final
      state, for metrics and statistics (runplane.observability).
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
        self.jobs: dict[str, Job] = {}
        self._final_order: deque[str] = deque()
        self._queues: dict[str, _EndpointQueue] = {}
        self._ttl_heap: list[tuple[float, str]] = []
        self._exec_heap: list[tuple[float, str, float]] = []
        self._enqueue_listeners: list[Callable[[str], None]] = []
        # Observers of every job's life (metrics, stats): see add_job_listener.
        self._job_listeners: list[Callable[[JobEvent], None]] = []
        # Set by the controller: what it says about an endpoint now, e.g. {"reason": "no
        # machine has ...", "throttled": 1}; shown in /health and on queued jobs' /status.
        self.endpoint_status: Callable[[str], dict[str, Any]] = lambda _endpoint_id: {}
        self.workers = WorkerRegistry(self)
        self._sweep_task: asyncio.Task | None = None
        self._background: set[asyncio.Task] = set()
        self._webhooks: Any = None
        self._closed = False
        self.load()

    # -- start-up and shutdown -----------------------------------------------------------

    def load(self) -> None:
        """Rebuild the in-memory index from the store (workers, queued and running jobs)."""
        self.workers.load()
        for ep, counts in sql.load_counters(self.engine).items():
            q = self._queue(ep)
            q.completed = counts.get(COMPLETED, 0)
            q.failed = counts.get(FAILED, 0) + counts.get(TIMED_OUT, 0)
            q.retried = counts.get("retried", 0)
        for job, _ in sql.load_active(self.engine):
            self.jobs[job.id] = job
            heapq.heappush(self._ttl_heap, (job.expires_at, job.id))
            if job.status == IN_PROGRESS:
                w = self.workers.get(job.worker_id) if job.worker_id else None
                if w is not None:
                    self._queue(job.endpoint_id).in_progress += 1
                    self.workers.holds(w, job)
                    self._push_exec_deadline(job)
                    continue
                job.status = IN_QUEUE
                job.worker_id = None
                job.started_at = None
                self.writer.write_nowait((sql.REQUEUE_JOB, {"_id": job.id, "retries": job.retries}))
            self._enqueue(job, notify=False)

    def start(self) -> None:
        """Start the sweep loop on the running event loop (idempotent)."""
        if self._sweep_task is None and not self._closed:
            self._sweep_task = asyncio.get_running_loop().create_task(self._sweep_loop())

    def begin_shutdown(self) -> None:
        """Answer every open long-poll now and hold no new ones (the server is stopping)."""
        self._closed = True
        for q in self._queues.values():
            while q.waiters:
                w = q.waiters.popleft()
                if not w.future.done():
                    w.future.set_result([])
        self.workers.release_all()
        for job in list(self.jobs.values()):
            job.notify()

    async def shutdown(self) -> None:
        """Release every long-poll at once (so the server stops promptly), stop the sweeps
        and flush pending writes."""
        self.begin_shutdown()
        if self._sweep_task is not None:
            self._sweep_task.cancel()
            self._sweep_task = None
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
        self._enqueue_listeners.append(callback)

    def add_job_listener(self, callback: Callable[[JobEvent], None]) -> None:
        """``callback(JobEvent)`` on submit, re-queue, take and final state, synchronously on
        the hot path: it must be O(1) and do no I/O. Its exceptions are logged, not raised."""
        self._job_listeners.append(callback)

    def _job_event(self, kind: str, job: Job, at: float) -> None:
        event = JobEvent(kind, job.id, job.endpoint_id, at, job.status, job.worker_id,
                         job.delay_ms(), job.execution_ms())
        for cb in self._job_listeners:
            try:
                cb(event)
            except Exception:
                log.exception("job listener failed")

    def queue_metrics(self, endpoint_id: str) -> QueueMetrics:
        q = self._queues.get(endpoint_id)
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
        heapq.heappush(self._ttl_heap, (job.expires_at, job_id))
        self._enqueue(job)
        if self._job_listeners:
            self._job_event(JOB_SUBMITTED, job, now)
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
            ev = job.changed or asyncio.Event()
            job.changed = ev
            try:
                await asyncio.wait_for(ev.wait(), remaining)
            except TimeoutError:
                return

    async def wait_change(self, job: Job, timeout: float) -> None:
        """Wait for the next chunk or the end of ``job`` (for SSE streams)."""
        ev = job.changed or asyncio.Event()
        job.changed = ev
        try:
            await asyncio.wait_for(ev.wait(), timeout)
        except TimeoutError:
            pass

    async def cancel(self, job: Job) -> Job:
        if job.final or job.deleted:
            return job
        holder = job.worker_id if job.status == IN_PROGRESS else job.reserved_by
        fut = self._finalize(job, CANCELLED, None, None)
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
        heapq.heappush(self._ttl_heap, (job.expires_at, job.id))
        self._enqueue(job)
        if self._job_listeners:
            self._job_event(JOB_REQUEUED, job, self.clock.now())
        return job

    async def purge(self, endpoint_id: str) -> int:
        """Cancel every queued (not yet handed out) job of the endpoint; returns how many."""
        q = self._queues.get(endpoint_id)
        if q is None:
            return 0
        removed = [job for job, seq in list(q.normal) + list(q.low) if job.queued and seq == job.qseq]
        futures = [self._finalize(job, CANCELLED, None, "removed by purge-queue") for job in removed]
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

    def health(self, endpoint_id: str) -> dict[str, Any]:
        m = self.queue_metrics(endpoint_id)
        controller = self.endpoint_status(endpoint_id)
        counts = {"idle": 0, "running": 0, "initializing": 0, "unhealthy": 0,
                  "throttled": controller.get("throttled", 0)}
        for w in self.workers.snapshot(endpoint_id):
            key = {"IDLE": "idle", "RUNNING": "running", "INITIALIZING": "initializing",
                   "UNHEALTHY": "unhealthy", "PARKED": "idle"}.get(w.status)
            if key:
                counts[key] += 1
        body = {
            "jobs": {
                "completed": m.completed,
                "failed": m.failed,
                "inProgress": m.in_progress,
                "inQueue": m.in_queue,
                "retried": m.retried,
            },
            "workers": counts,
        }
        if controller.get("reason"):
            body["reason"] = controller["reason"]  # runplane extension: why jobs wait
        return body

    # -- worker operations ---------------------------------------------------------------

    async def take(
        self, worker: Worker, n: int, hold_s: float, disconnect: asyncio.Future | None = None
    ) -> list[Job]:
        """Reserve up to ``n`` jobs for ``worker``, holding the long-poll up to ``hold_s``.

        The caller writes the response and then calls :meth:`confirm` (or :meth:`untake` if
        it could not be written).
        """
        self.workers.seen(worker)
        self.workers.first_take(worker)
        if not worker.can_take() or self._closed:
            if not self._closed:
                await _hold(hold_s, disconnect)
            return []
        q = self._queue(worker.endpoint_id)
        if q.n_normal or q.n_low:
            return self._pop(q, n, worker)
        fut = asyncio.get_running_loop().create_future()
        q.waiters.append(_Waiter(worker, fut, n))
        worker.polling += 1
        try:
            waits = {fut} if disconnect is None else {fut, disconnect}
            await asyncio.wait(waits, timeout=hold_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            worker.polling -= 1
        if fut.done():
            return fut.result()
        fut.cancel()
        return []

    def confirm(self, worker: Worker, jobs: list[Job]) -> None:
        """The job-take response carrying ``jobs`` was written: they are taken now."""
        now = self.clock.now()
        ops = []
        for job in jobs:
            job.reserved = False
            job.reserved_by = None
            if job.final or job.deleted:
                # Cancelled or expired while the response was on its way.
                self.workers.stop_job(worker.id, job.id)
                continue
            job.status = IN_PROGRESS
            job.worker_id = worker.id
            job.started_at = now
            job.missing_since = None
            self.workers.holds(worker, job)
            self._push_exec_deadline(job)
            ops.append((sql.TAKE_JOB, {"_id": job.id, "worker_id": worker.id,
                                       "started_at": now, "delay_ms": job.delay_ms()}))
            if self._job_listeners:
                self._job_event(JOB_TAKEN, job, now)
        if ops:
            self.writer.write_nowait(*ops)

    def untake(self, jobs: list[Job]) -> None:
        """The job-take response could not be written: back to the head of the queue."""
        for job in reversed(jobs):
            if job.reserved and not job.final and not job.deleted:
                self._leave_running(job)
                self._enqueue(job, front=True)

    def release_waiters(self, worker: Worker) -> None:
        """Answer the worker's open job-take long-polls with no job."""
        q = self._queues.get(worker.endpoint_id)
        if q is None:
            return
        for w in q.waiters:
            if w.worker is worker and not w.future.done():
                w.future.set_result([])

    async def done(self, worker: Worker, job_id: str, body: Any, is_stream: bool) -> str:
        """A job-done post: progress update or final result. Returns what was done with it
        (``progress``, ``completed``, ``failed``, ``ignored``) for the response."""
        self.workers.seen(worker)
        if not isinstance(body, dict):
            body = {"output": body}
        if body.get("stopPod"):
            self.workers.request_stop(worker, "the handler asked for a fresh worker (refresh_worker)")
        job = self.jobs.get(job_id)
        if job is None or job.deleted or job.endpoint_id != worker.endpoint_id or job.final:
            return "ignored"
        if body.get("status") == IN_PROGRESS:
            if job.status != IN_PROGRESS or job.worker_id != worker.id:
                return "ignored"
            job.output = body.get("output")
            await self.writer.write((sql.PROGRESS_JOB, {"_id": job.id, "output": job.output}))
            return "progress"
        holder = job.worker_id if job.status == IN_PROGRESS else job.reserved_by
        error = body.get("error")
        if error:
            text = error if isinstance(error, str) else orjson.dumps(error).decode()
            fut = self._finalize(job, FAILED, body.get("output"), text)
            result = "failed"
        else:
            fut = self._finalize(job, COMPLETED, body.get("output"), None)
            result = "completed"
        if holder and holder != worker.id:
            # It was re-queued and handed to another worker meanwhile: first result wins.
            self.workers.stop_job(holder, job.id)
        if fut is not None:
            await fut
        return result

    async def stream_chunk(self, worker: Worker, job_id: str, body: Any) -> str:
        self.workers.seen(worker)
        job = self.jobs.get(job_id)
        if job is None or job.deleted or job.final or job.endpoint_id != worker.endpoint_id:
            return "ignored"
        chunk = body["output"] if isinstance(body, dict) and "output" in body else body
        seq = len(job.chunks)
        job.chunks.append(chunk)
        await self.writer.write((sql.INSERT_CHUNK, {"job_id": job.id, "seq": seq, "output": chunk}))
        job.notify()
        return "stored"

    # -- internal transitions ------------------------------------------------------------

    def lose(self, job: Job, reason: str) -> None:
        """The job's worker lost it: re-queue counting a retry, or FAIL past the limit."""
        if job.final or job.deleted:
            return
        self._leave_running(job)
        q = self._queue(job.endpoint_id)
        limit = self.settings.job_max_retries
        if job.retries >= limit:
            self._finalize(job, FAILED, None, f"{reason}; out of retries ({limit})")
            return
        job.retries += 1
        q.retried += 1
        log.info("job %s re-queued (retry %d): %s", job.id, job.retries, reason,
                 extra={"job_id": job.id, "endpoint_id": job.endpoint_id})
        job.worker_id = None
        job.started_at = None
        self.writer.write_nowait((sql.REQUEUE_JOB, {"_id": job.id, "retries": job.retries}))
        self._enqueue(job, front=True)
        if self._job_listeners:
            self._job_event(JOB_REQUEUED, job, self.clock.now())

    def _finalize(self, job: Job, status: str, output: Any, error: str | None) -> asyncio.Future | None:
        if job.final:
            return None
        self._leave_running(job)
        self._unqueue(job)
        now = self.clock.now()
        job.status = status
        job.output = output
        job.error = error
        job.finished_at = now
        job.settled = False
        retention = (
            self.settings.runsync_result_retention_s if job.sync else self.settings.run_result_retention_s
        )
        job.retain_until = min(now + retention, job.expires_at)
        q = self._queue(job.endpoint_id)
        if status == COMPLETED:
            q.completed += 1
        elif status in (FAILED, TIMED_OUT):
            q.failed += 1
        if self._job_listeners:
            self._job_event(JOB_FINAL, job, now)
        self._final_order.append(job.id)
        while len(self._final_order) > RECENT_FINAL_JOBS:
            old = self.jobs.get(self._final_order.popleft())
            if old is not None and old.final:
                del self.jobs[old.id]
        fut = self.writer.write_nowait((sql.FINISH_JOB, sql.finish_params(job)))
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
        if job.webhook and not self._closed:
            from runplane.broker.webhooks import deliver

            task = asyncio.get_running_loop().create_task(deliver(self, job))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    def _delete(self, job: Job, reason: str) -> None:
        holder = job.worker_id if job.status == IN_PROGRESS else job.reserved_by
        self._leave_running(job)
        self._unqueue(job)
        if holder:
            self.workers.stop_job(holder, job.id)
        job.deleted = True
        self.jobs.pop(job.id, None)
        job.notify()
        log.info("job %s deleted: %s", job.id, reason,
                 extra={"job_id": job.id, "endpoint_id": job.endpoint_id})
        self.writer.write_nowait((sql.DELETE_JOB, {"_id": job.id}), (sql.DELETE_CHUNKS, {"_id": job.id}))

    def _timeout(self, job: Job) -> None:
        holder = job.worker_id
        limit = self._timeout_ms(job)
        self._finalize(job, TIMED_OUT, None, f"execution timeout of {limit} ms exceeded")
        if holder:
            self.workers.stop_job(holder, job.id)

    def _queue(self, endpoint_id: str) -> _EndpointQueue:
        q = self._queues.get(endpoint_id)
        if q is None:
            q = self._queues[endpoint_id] = _EndpointQueue()
        return q

    def _enqueue(self, job: Job, front: bool = False, notify: bool = True) -> None:
        q = self._queue(job.endpoint_id)
        job.status = IN_QUEUE
        job.reserved = False
        job.reserved_by = None
        job.queued = True
        job.qseq += 1
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
        if q.waiters:
            self._dispatch(q)
        if notify:
            for cb in self._enqueue_listeners:
                try:
                    cb(job.endpoint_id)
                except Exception:
                    log.exception("enqueue listener failed")

    def _unqueue(self, job: Job) -> None:
        if not job.queued:
            return
        job.queued = False
        job.qseq += 1
        q = self._queue(job.endpoint_id)
        if job.low_priority:
            q.n_low -= 1
        else:
            q.n_normal -= 1

    def _leave_running(self, job: Job) -> None:
        if job.reserved or job.status == IN_PROGRESS:
            self._queue(job.endpoint_id).in_progress -= 1
            self.workers.releases(job.worker_id if job.status == IN_PROGRESS else None, job)
        job.reserved = False
        job.reserved_by = None

    def _pop(self, q: _EndpointQueue, n: int, worker: Worker) -> list[Job]:
        out: list[Job] = []
        for d in (q.normal, q.low):
            while d and len(out) < n:
                job, seq = d.popleft()
                if not job.queued or seq != job.qseq:
                    continue
                job.queued = False
                if job.low_priority:
                    q.n_low -= 1
                else:
                    q.n_normal -= 1
                job.reserved = True
                job.reserved_by = worker.id
                out.append(job)
        q.in_progress += len(out)
        return out

    def _dispatch(self, q: _EndpointQueue) -> None:
        while q.waiters and (q.n_normal or q.n_low):
            w = q.waiters.popleft()
            if w.future.done():
                continue
            if not w.worker.can_take():
                w.future.set_result([])
                continue
            w.future.set_result(self._pop(q, w.n, w.worker))

    def _timeout_ms(self, job: Job) -> int:
        return job.execution_timeout_ms or self.directory.execution_timeout_ms(job.endpoint_id)

    def _push_exec_deadline(self, job: Job) -> None:
        assert job.started_at is not None
        deadline = job.started_at + self._timeout_ms(job) / 1000.0
        heapq.heappush(self._exec_heap, (deadline, job.id, job.started_at))

    # -- sweeps --------------------------------------------------------------------------

    def sweep(self, now: float | None = None) -> None:
        """Enforce TTLs, execution timeouts, heartbeats and result retention as of ``now``."""
        now = self.clock.now() if now is None else now
        while self._ttl_heap and self._ttl_heap[0][0] <= now:
            deadline, job_id = heapq.heappop(self._ttl_heap)
            job = self.jobs.get(job_id)
            if job is not None and not job.final and job.expires_at == deadline:
                self._delete(job, "ttl expired")
        while self._exec_heap and self._exec_heap[0][0] <= now:
            _, job_id, started = heapq.heappop(self._exec_heap)
            job = self.jobs.get(job_id)
            if job is not None and job.status == IN_PROGRESS and job.started_at == started:
                self._timeout(job)
        self.workers.sweep(now)
        for q in self._queues.values():
            if q.waiters and any(w.future.done() for w in q.waiters):
                q.waiters = deque(w for w in q.waiters if not w.future.done())
        self._expire_results(now)

    def _expire_results(self, now: float) -> None:
        ids = sql.expired_ids(self.engine, now)
        if not ids:
            return
        ops = []
        for job_id in ids:
            job = self.jobs.get(job_id)
            if job is not None and job.final:
                del self.jobs[job_id]
                job.deleted = True
            ops.append((sql.DELETE_JOB, {"_id": job_id}))
            ops.append((sql.DELETE_CHUNKS, {"_id": job_id}))
        self.writer.write_nowait(*ops)

    async def _sweep_loop(self) -> None:
        interval = self.settings.broker_sweep_interval_s
        while not self._closed:
            await asyncio.sleep(interval)
            try:
                self.sweep()
            except Exception:
                log.exception("broker sweep failed")


async def _hold(seconds: float, disconnect: asyncio.Future | None) -> None:
    if disconnect is None:
        await asyncio.sleep(seconds)
    else:
        await asyncio.wait({disconnect}, timeout=seconds)
